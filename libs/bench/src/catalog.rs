//! Catalogs and stock for the scenarios, put in through inventory's API as a seller would
//! (UpsertCatalog, then AdjustStock `received` per SKU, so the ledger holds them too).

use std::collections::BTreeMap;

use futures::StreamExt;
use proto::common::v1::Money;
use proto::inventory::v1 as pb;
use proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::stack::Bearer;

#[derive(Debug, Clone)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub price_minor: i64,
    pub stock: i64,
}

/// `n` plain SKUs `SKU-00000`... with `stock` each.
pub fn numbered(n: usize, stock: i64) -> Vec<Product> {
    (0..n)
        .map(|i| Product {
            sku: format!("SKU-{i:05}"),
            name: format!("Item {i}"),
            attributes: BTreeMap::new(),
            price_minor: 500 + (i as i64 % 40) * 125,
            stock,
        })
        .collect()
}

const KINDS: &[&str] = &[
    "Hoop Earrings",
    "Stud Earrings",
    "Drop Earrings",
    "Chain Necklace",
    "Pendant Necklace",
    "Choker",
    "Bangle",
    "Beaded Bracelet",
    "Charm Bracelet",
    "Cuff",
    "Signet Ring",
    "Band Ring",
    "Stacking Ring",
    "Anklet",
    "Brooch",
    "Hair Clip",
    "Tote Bag",
    "Clutch",
    "Crossbody Bag",
    "Silk Scarf",
    "Sunglasses",
    "Watch",
    "Belt",
    "Wallet",
    "T-Shirt",
    "Linen Shirt",
    "Wrap Dress",
    "Maxi Skirt",
    "Denim Jacket",
    "Sandals",
];
const MATERIALS: &[&str] = &[
    "Gold",
    "Silver",
    "Rose Gold",
    "Pearl",
    "Leather",
    "Beaded",
    "Crystal",
    "Cotton",
    "Linen",
    "Velvet",
    "Brass",
    "Copper",
    "Jade",
    "Onyx",
    "Wooden",
    "Ceramic",
    "Satin",
    "Suede",
    "Enamel",
    "Titanium",
];
const STYLES: &[&str] = &[
    "Classic",
    "Twisted",
    "Minimal",
    "Vintage",
    "Chunky",
    "Dainty",
    "Layered",
    "Braided",
    "Hammered",
    "Sculpted",
    "Boho",
    "Royal",
    "Sunset",
    "Ocean",
    "Desert",
    "Petal",
    "Starlight",
    "Heritage",
    "Urban",
    "Coastal",
];
const COLOURS: &[&str] = &["black", "white", "red", "blue", "green", "beige", "brown", "pink"];
const SIZES: &[&str] = &["5", "6", "7", "8", "9", "S", "M", "L", "XL"];

/// A shop's catalog of `n` products with names like "Twisted Gold Hoop Earrings" and size and
/// colour variants, as the search benchmark's 10,000 SKUs.
pub fn shop(n: usize) -> Vec<Product> {
    (0..n)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let material = MATERIALS[(i / KINDS.len()) % MATERIALS.len()];
            let style = STYLES[(i / (KINDS.len() * MATERIALS.len())) % STYLES.len()];
            let mut attributes = BTreeMap::new();
            attributes.insert("size".to_string(), SIZES[(i * 7) % SIZES.len()].to_string());
            attributes.insert("colour".to_string(), COLOURS[(i * 3) % COLOURS.len()].to_string());
            Product {
                sku: format!("{}-{i:05}", kind.split_whitespace().next().unwrap_or("SKU").to_uppercase()),
                name: format!("{style} {material} {kind}"),
                attributes,
                price_minor: 800 + (i as i64 * 37) % 12_000,
                stock: 0,
            }
        })
        .collect()
}

/// Search queries of the kind the draft parser sends: product words, a material, a variant hint.
pub const SEARCHES: &[&str] = &[
    "gold hoop",
    "silver chain necklace",
    "beaded bracelet",
    "pearl drop earrings",
    "leather tote bag",
    "twisted gold hoops size 7",
    "rose gold ring",
    "linen shirt blue L",
    "vintage brooch",
    "crossbody bag black",
    "dainty anklet",
    "silk scarf",
];

/// Upserts the products (in calls of at most 5,000) and receives their stock, 16 calls at a time.
pub async fn seed(channel: Channel, tenant: Uuid, products: &[Product]) -> anyhow::Result<()> {
    let manager = Bearer::new(Some(tenant), testkit::Role::Manager)?;
    let mut client = InventoryServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    for chunk in products.chunks(5000) {
        let items = chunk
            .iter()
            .map(|p| pb::CatalogItemInput {
                sku: p.sku.clone(),
                name: p.name.clone(),
                attributes: p.attributes.clone().into_iter().collect(),
                price: Some(Money { amount_minor: p.price_minor, currency: "USD".into() }),
                active: Some(true),
                retailer_id: String::new(),
                product_id: String::new(),
            })
            .collect();
        let response = client
            .upsert_catalog(manager.request(pb::UpsertCatalogRequest { items, skip_invalid: false }))
            .await?
            .into_inner();
        if !response.errors.is_empty() {
            anyhow::bail!("catalog rows refused: {:?}", &response.errors[..response.errors.len().min(3)]);
        }
    }
    let adjustments = products.iter().filter(|p| p.stock > 0).map(|p| {
        let client = InventoryServiceClient::new(channel.clone());
        let request = manager.request(pb::AdjustStockRequest {
            sku: p.sku.clone(),
            reason: pb::AdjustmentReason::Received as i32,
            delta: p.stock,
            ..Default::default()
        });
        async move { client.clone().adjust_stock(request).await }
    });
    let results: Vec<_> = futures::stream::iter(adjustments).buffer_unordered(16).collect().await;
    for result in results {
        result?;
    }
    Ok(())
}

/// Available stock of one SKU.
pub async fn level(channel: Channel, tenant: Uuid, sku: &str) -> anyhow::Result<pb::StockLevel> {
    let viewer = Bearer::new(Some(tenant), testkit::Role::Viewer)?;
    let levels = InventoryServiceClient::new(channel)
        .get_stock(viewer.request(pb::GetStockRequest { skus: vec![sku.to_string()], location: String::new() }))
        .await?
        .into_inner()
        .levels;
    levels.into_iter().next().ok_or_else(|| anyhow::anyhow!("no stock row for {sku}"))
}
