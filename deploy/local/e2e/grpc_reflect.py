"""Calls gRPC methods the way a client without generated code does: through server reflection.

The server's own descriptors (fetched with grpcio-reflection's v1alpha client) are loaded into a
protobuf DescriptorPool, and request/response classes are built from them at run time. No _pb2
files are generated, so these tests exercise exactly what a server advertises.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class ReflectionClient:
    """A channel plus the server's descriptors, resolved lazily through reflection."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(address)
        self._database = ProtoReflectionDescriptorDatabase(self.channel)
        self._pool = descriptor_pool.DescriptorPool(self._database)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "ReflectionClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def services(self) -> list[str]:
        """Fully qualified names of the services the server lists."""
        return list(self._database.get_services())

    def message_class(self, full_name: str) -> type[Message]:
        return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(full_name))

    def call(
        self,
        method: str,
        request: Mapping[str, Any] | Message | None = None,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = 5.0,
    ) -> Message:
        """Calls a unary method named `package.Service/Method`; `request` may be a JSON-like dict.

        Raises grpc.RpcError when the server answers with a non-OK status.
        """
        service_name, _, method_name = method.partition("/")
        service = self._pool.FindServiceByName(service_name)
        descriptor = service.methods_by_name[method_name]
        if descriptor.client_streaming or descriptor.server_streaming:
            raise ValueError(f"{method} is a streaming method; only unary calls are supported")
        request_class = message_factory.GetMessageClass(descriptor.input_type)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        if request is None:
            request = request_class()
        elif not isinstance(request, Message):
            request = json_format.ParseDict(dict(request), request_class())
        stub = self.channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return stub(request, metadata=list(metadata), timeout=timeout)


def as_dict(message: Message) -> dict[str, Any]:
    """A response as JSON-like data (proto3 JSON names, enum names, defaults included)."""
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
