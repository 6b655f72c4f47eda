//! Instagram Messaging webhooks: the payload as Meta sends it, and its normalisation.
//!
//! `object = "instagram"`, `entry[] { id (the professional account: the channel), time,
//! messaging[] { sender, recipient, timestamp (ms), message | postback | reaction | read |
//! referral } }`. Echoes of messages the business sent (`is_echo`, or the sender being the
//! account itself) become `echo_received`, never customer messages.

use events::ingest::{
    Customer, DeliveryStatus, EchoReceived, MessageContent, MessageReceived, MessageStatusUpdated, Platform,
};
use serde::Deserialize;

use super::normalized::from_epoch_millis;
use super::{ChannelRef, IngestEvent, Normalized, ParseError};

#[derive(Debug, Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Messaging {
    sender: Party,
    recipient: Party,
    timestamp: i64,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    postback: Option<Postback>,
    #[serde(default)]
    reaction: Option<Reaction>,
    #[serde(default)]
    read: Option<Read>,
    #[serde(default)]
    referral: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Message {
    mid: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    #[serde(default)]
    quick_reply: Option<QuickReply>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    is_unsupported: bool,
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Option<AttachmentPayload>,
}

#[derive(Debug, Deserialize)]
struct AttachmentPayload {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QuickReply {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct ReplyTo {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    story: Option<Story>,
}

#[derive(Debug, Deserialize)]
struct Story {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Postback {
    #[serde(default)]
    mid: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reaction {
    mid: String,
    action: String,
    #[serde(default)]
    emoji: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Read {
    mid: String,
}

/// Parses and normalises an Instagram messaging webhook body.
pub fn normalize(body: &[u8]) -> Result<Vec<Normalized>, ParseError> {
    let webhook: Webhook = serde_json::from_slice(body).map_err(|e| ParseError::from_serde("instagram", e))?;
    if webhook.object != "instagram" {
        return Err(ParseError::WrongShape {
            platform: "instagram",
            reason: format!("object is {:?}", webhook.object),
        });
    }
    let mut out = Vec::new();
    for entry in webhook.entry {
        let channel = ChannelRef { platform: Platform::Instagram, external_id: entry.id.clone() };
        for event in entry.messaging {
            if let Some(normalized) = normalize_messaging(&channel, event)? {
                out.push(normalized);
            }
        }
    }
    Ok(out)
}

fn normalize_messaging(channel: &ChannelRef, event: Messaging) -> Result<Option<Normalized>, ParseError> {
    let at = from_epoch_millis("messaging[].timestamp", event.timestamp)?;
    let account = channel.external_id.clone();
    let from_business = event.sender.id == account;
    let customer_id = if from_business { event.recipient.id.clone() } else { event.sender.id.clone() };
    let partition_key = format!("ig:{account}:{customer_id}");
    let received = |message_id: String, content: MessageContent, reply_to: Option<String>| {
        IngestEvent::Message(MessageReceived {
            platform: Platform::Instagram,
            channel_id: account.clone(),
            message_id,
            customer: Customer { platform_id: customer_id.clone(), name: None, phone_e164: None },
            sent_at: at,
            content,
            reply_to,
            referral: event.referral.clone(),
        })
    };

    let (dedupe_key, normalized_event) = if let Some(message) = event.message {
        if message.is_echo || from_business {
            let echo = EchoReceived {
                platform: Platform::Instagram,
                channel_id: account.clone(),
                message_id: message.mid.clone(),
                recipient_id: event.recipient.id.clone(),
                sent_at: at,
                text: message.text.clone(),
            };
            (format!("ig:echo:{}", message.mid), IngestEvent::Echo(echo))
        } else {
            let reply_to = message.reply_to.as_ref().and_then(|r| r.mid.clone());
            let content = message_content(&message);
            let key = if message.is_deleted {
                format!("ig:deleted:{}", message.mid)
            } else {
                format!("ig:msg:{}", message.mid)
            };
            (key, received(message.mid.clone(), content, reply_to))
        }
    } else if let Some(postback) = event.postback {
        let mid = postback.mid.clone().unwrap_or_else(|| format!("postback-{}-{}", customer_id, event.timestamp));
        let content = MessageContent::Interactive {
            reply_id: postback.payload.clone().unwrap_or_default(),
            title: postback.title.clone(),
        };
        (format!("ig:postback:{mid}"), received(mid, content, None))
    } else if let Some(reaction) = event.reaction {
        let emoji = if reaction.action == "unreact" { None } else { reaction.emoji.clone() };
        let content = MessageContent::Reaction { target_message_id: reaction.mid.clone(), emoji };
        let id = format!("reaction-{}-{}-{}", reaction.mid, reaction.action, event.timestamp);
        (format!("ig:{id}"), received(id.clone(), content, None))
    } else if let Some(read) = event.read {
        let status = MessageStatusUpdated {
            platform: Platform::Instagram,
            channel_id: account.clone(),
            message_id: read.mid.clone(),
            status: DeliveryStatus::Read,
            raw_status: "read".into(),
            recipient_id: Some(customer_id.clone()),
            at,
            errors: Vec::new(),
        };
        (format!("ig:read:{}", read.mid), IngestEvent::Status(status))
    } else if let Some(referral) = event.referral.clone() {
        let id = format!("referral-{}-{}", customer_id, event.timestamp);
        let content = MessageContent::Unsupported { raw_type: "referral".into(), raw: referral };
        (format!("ig:{id}"), received(id.clone(), content, None))
    } else {
        // A messaging item of a kind we do not know: nothing to key it on but sender and time.
        return Ok(None);
    };
    Ok(Some(Normalized { dedupe_key, channel: channel.clone(), partition_key, event: normalized_event }))
}

fn message_content(message: &Message) -> MessageContent {
    if message.is_deleted {
        return MessageContent::Unsupported { raw_type: "message_deleted".into(), raw: serde_json::Value::Null };
    }
    if let Some(story) = message.reply_to.as_ref().and_then(|r| r.story.as_ref()) {
        return MessageContent::StoryReply {
            story_id: story.id.clone(),
            story_url: story.url.clone(),
            text: message.text.clone(),
        };
    }
    if let Some(quick_reply) = &message.quick_reply {
        return MessageContent::Interactive { reply_id: quick_reply.payload.clone(), title: message.text.clone() };
    }
    if let Some(attachment) = message.attachments.first() {
        return MessageContent::Media {
            media_kind: attachment.kind.clone(),
            media_id: None,
            url: attachment.payload.as_ref().and_then(|p| p.url.clone()),
            mime_type: None,
            caption: message.text.clone(),
        };
    }
    match &message.text {
        Some(text) if !message.is_unsupported => MessageContent::Text { body: text.clone() },
        _ => MessageContent::Unsupported { raw_type: "unsupported".into(), raw: serde_json::Value::Null },
    }
}
