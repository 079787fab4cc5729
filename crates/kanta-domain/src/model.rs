//! The customer (transaction) models by name: one enum, parsed and printed here, used by the
//! CLI flags, the settings and the scoring crate.

use std::fmt;
use std::str::FromStr;

/// Which transaction model scores the customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelKind {
    /// Fit BG/NBD, MBG/NBD and Pareto/NBD and keep the lowest BIC (see `kanta_score` for what
    /// happens when a fit fails or the data cannot identify a model).
    #[default]
    Auto,
    /// BG/NBD (Fader, Hardie & Lee 2005).
    BgNbd,
    /// MBG/NBD (Batislam, Denizel & Filiztekin 2007).
    MbgNbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    ParetoNbd,
}

/// A name that is not a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a customer model; use one of auto, bgnbd, mbgnbd, paretonbd")]
pub struct UnknownModel(pub String);

impl ModelKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: [ModelKind; 4] = [ModelKind::Auto, ModelKind::BgNbd, ModelKind::MbgNbd, ModelKind::ParetoNbd];

    /// The name on the command line, in the settings and in outputs (`bgnbd`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Auto => "auto",
            ModelKind::BgNbd => "bgnbd",
            ModelKind::MbgNbd => "mbgnbd",
            ModelKind::ParetoNbd => "paretonbd",
        }
    }

    /// One line for help texts.
    pub fn description(self) -> &'static str {
        match self {
            ModelKind::Auto => "Fit BG/NBD, MBG/NBD and Pareto/NBD and keep the lowest BIC",
            ModelKind::BgNbd => "BG/NBD",
            ModelKind::MbgNbd => "MBG/NBD",
            ModelKind::ParetoNbd => "Pareto/NBD",
        }
    }

    /// The kind named `name` (exactly as [`ModelKind::name`] prints it).
    pub fn parse(name: &str) -> Result<ModelKind, UnknownModel> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| UnknownModel(name.to_owned()))
    }

    /// The models to fit: the three for [`ModelKind::Auto`], else the one named.
    pub fn candidates(self) -> &'static [ModelKind] {
        match self {
            ModelKind::Auto => &[ModelKind::BgNbd, ModelKind::MbgNbd, ModelKind::ParetoNbd],
            ModelKind::BgNbd => &[ModelKind::BgNbd],
            ModelKind::MbgNbd => &[ModelKind::MbgNbd],
            ModelKind::ParetoNbd => &[ModelKind::ParetoNbd],
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<ModelKind, UnknownModel> {
        ModelKind::parse(s)
    }
}

impl serde::Serialize for ModelKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ModelKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ModelKind, D::Error> {
        let name = String::deserialize(d)?;
        ModelKind::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_nothing_else_parses() {
        for kind in ModelKind::ALL {
            assert_eq!(ModelKind::parse(kind.name()), Ok(kind));
            assert_eq!(kind.to_string().parse::<ModelKind>(), Ok(kind));
        }
        assert_eq!(
            ModelKind::parse("BGNBD").unwrap_err().to_string(),
            "`BGNBD` is not a customer model; use one of auto, bgnbd, mbgnbd, paretonbd"
        );
        assert_eq!(ModelKind::default(), ModelKind::Auto);
        assert_eq!(ModelKind::Auto.candidates(), [ModelKind::BgNbd, ModelKind::MbgNbd, ModelKind::ParetoNbd]);
        assert_eq!(ModelKind::ParetoNbd.candidates(), [ModelKind::ParetoNbd]);
    }
}
