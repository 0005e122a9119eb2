//! A strategy's settings as the configuration gave them (`[[strategy]]` tables), read
//! with defaults and checked: every error names the strategy and the key, and a key no
//! strategy reads is refused rather than ignored.

use crate::indicators::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// One setting's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Number(f64),
    /// Text.
    Text(String),
}

/// Why a strategy's settings were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// No strategy of this name is registered.
    #[error("unknown strategy {name:?}: expected one of {known}")]
    UnknownStrategy {
        /// The name given.
        name: String,
        /// The registered names.
        known: String,
    },
    /// A key of the wrong type or out of range.
    #[error("strategy {strategy:?}: {key}: {why}")]
    Invalid {
        /// The strategy.
        strategy: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// A key the strategy does not read.
    #[error("strategy {strategy:?}: unknown key {key:?}")]
    UnknownKey {
        /// The strategy.
        strategy: String,
        /// The key.
        key: String,
    },
}

/// Reads a strategy's settings, remembering which keys were read.
#[derive(Debug)]
pub struct Params<'a> {
    strategy: &'a str,
    values: &'a BTreeMap<String, ParamValue>,
    read: RefCell<BTreeSet<&'a str>>,
}

impl<'a> Params<'a> {
    /// The settings of `strategy`.
    pub fn new(strategy: &'a str, values: &'a BTreeMap<String, ParamValue>) -> Self {
        Self {
            strategy,
            values,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// An error about `key` of this strategy.
    pub fn invalid(&self, key: &str, why: impl std::fmt::Display) -> ParamError {
        ParamError::Invalid {
            strategy: self.strategy.to_owned(),
            key: key.to_owned(),
            why: why.to_string(),
        }
    }

    fn get(&self, key: &'a str) -> Option<&'a ParamValue> {
        self.read.borrow_mut().insert(key);
        self.values.get(key)
    }

    /// A whole number in `min..=max`, `default` when absent.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] for another type or a value out of range.
    pub fn int(&self, key: &'a str, default: i64, min: i64, max: i64) -> Result<i64, ParamError> {
        let v = match self.get(key) {
            None => default,
            Some(ParamValue::Int(v)) => *v,
            Some(other) => {
                return Err(self.invalid(key, format!("expected a whole number, got {other:?}")))
            }
        };
        if !(min..=max).contains(&v) {
            return Err(self.invalid(key, format!("{v} is outside {min}..={max}")));
        }
        Ok(v)
    }

    /// A number in `min..=max` (a whole number is taken too), quantised to a [`Value`]
    /// once here so that every later step is exact.
    ///
    /// # Errors
    /// [`ParamError::Invalid`] for another type, a non-finite value or one out of range.
    pub fn number(
        &self,
        key: &'a str,
        default: f64,
        min: f64,
        max: f64,
    ) -> Result<Value, ParamError> {
        let v = match self.get(key) {
            None => default,
            Some(ParamValue::Number(v)) => *v,
            Some(ParamValue::Int(v)) => *v as f64,
            Some(other) => {
                return Err(self.invalid(key, format!("expected a number, got {other:?}")))
            }
        };
        if !v.is_finite() || v < min || v > max {
            return Err(self.invalid(key, format!("{v} is outside {min}..={max}")));
        }
        Ok(Value::from_num(v))
    }

    /// Refuses any key that was not read.
    ///
    /// # Errors
    /// [`ParamError::UnknownKey`] for the first such key.
    pub fn finish(&self) -> Result<(), ParamError> {
        let read = self.read.borrow();
        match self.values.keys().find(|k| !read.contains(k.as_str())) {
            Some(key) => Err(ParamError::UnknownKey {
                strategy: self.strategy.to_owned(),
                key: key.clone(),
            }),
            None => Ok(()),
        }
    }
}
