//! The customer snapshot and the shipping address stored with an order.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    /// E.164 where known.
    pub phone_e164: Option<String>,
    pub email: Option<String>,
    pub channel: Option<String>,
    pub channel_customer_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub recipient_name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub phone_e164: Option<String>,
}

impl Address {
    pub fn validate(&self) -> Result<(), String> {
        if self.line1.trim().is_empty() || self.city.trim().is_empty() {
            return Err("an address needs line1 and city".into());
        }
        let country = self.country_code.trim();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err("country_code must be ISO 3166-1 alpha-2".into());
        }
        Ok(())
    }
}

/// Lowercased text the free-text search matches: the code, the customer's name and phone.
pub fn search_text(code: &str, customer: &Customer) -> String {
    format!("{} {} {}", code, customer.name, customer.phone_e164.as_deref().unwrap_or_default()).to_lowercase()
}

/// E.164: `+` and 8-15 digits, no leading zero.
pub fn valid_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_street_a_city_and_a_country_code() {
        let mut address = Address {
            line1: "1 Main St".into(),
            city: "Lagos".into(),
            country_code: "NG".into(),
            ..Default::default()
        };
        assert!(address.validate().is_ok());
        address.country_code = "Nigeria".into();
        assert!(address.validate().is_err());
    }

    #[test]
    fn e164_table() {
        assert!(valid_e164("+2348012345678"));
        for bad in ["2348012345678", "+0123456789", "+12", "+1234567890123456", "+1 650 555"] {
            assert!(!valid_e164(bad), "{bad}");
        }
    }
}
