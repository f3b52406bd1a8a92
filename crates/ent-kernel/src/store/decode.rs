//! Typed decoding of the store's portable column types, for `#[derive(sqlx::FromRow)]`
//! row structs: a value the code does not know is an error (`ColumnDecode`, a 500
//! for the caller), never a silent default.
//!
//! - enum columns: `#[sqlx(try_from = "String")]` with a `TryFrom<String>` written by
//!   [`text_enum!`](crate::text_enum) from the enum's `parse`;
//! - booleans (`BIGINT` 0/1): `#[sqlx(try_from = "Flag")]`;
//! - JSON documents (`TEXT`): `#[sqlx(try_from = "JsonText")]`.

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::types::Type;
use sqlx::Any;

/// A stored value outside the set the code knows.
#[derive(Debug, thiserror::Error)]
#[error("valeur inconnue pour {what} : « {value} »")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// `impl TryFrom<String> for $enum` through its `parse(&str) -> Option<Self>`: an
/// unknown value is an [`UnknownValue`] error. With `from $all` (the list of its values),
/// also writes that `parse`: the value whose `as_str()` is the text.
///
/// With `{ Variant = "text", … }` (every variant with its text), also writes `ALL` (the
/// values in that order) and `as_str`: the list is written once.
///
/// ```ignore
/// ent_kernel::text_enum!(pub Status from Self::ALL);
/// ent_kernel::text_enum!(pub Level { N1 = "n1", N2 = "n2", N3 = "n3" });
/// ```
#[macro_export]
macro_rules! text_enum {
    ($vis:vis $enum:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $enum {
            /// Every value, in order.
            $vis const ALL: [$enum; [$($text),+].len()] = [$($enum::$variant),+];

            /// The value's text, as stored.
            $vis fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $text,)+
                }
            }
        }
        $crate::text_enum!($vis $enum from Self::ALL);
    };
    ($vis:vis $enum:ident from $all:expr) => {
        impl $enum {
            /// The value whose text (`as_str`) is `s`.
            $vis fn parse(s: &str) -> Option<$enum> {
                $all.into_iter().find(|value| value.as_str() == s)
            }
        }
        $crate::text_enum!($enum);
    };
    ($enum:ty) => {
        impl TryFrom<String> for $enum {
            type Error = $crate::store::UnknownValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                <$enum>::parse(&value).ok_or($crate::store::UnknownValue { what: stringify!($enum), value })
            }
        }
    };
}

/// `impl Type<Any>` for a wrapper stored as the column type `$stored` (its SQL type is
/// the stored one's; only the decoding differs).
macro_rules! stored_as {
    ($wrapper:ident $(<$param:ident>)?: $stored:ty) => {
        impl$(<$param>)? Type<Any> for $wrapper$(<$param>)? {
            fn type_info() -> AnyTypeInfo {
                <$stored as Type<Any>>::type_info()
            }
            fn compatible(ty: &AnyTypeInfo) -> bool {
                <$stored as Type<Any>>::compatible(ty)
            }
        }
    };
}

/// A boolean stored as `BIGINT` 0/1; any other integer is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

stored_as!(Flag: i64);

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        match <i64 as Decode<'r, Any>>::decode(value)? {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            other => Err(Box::new(UnknownValue { what: "booléen (0 ou 1)", value: other.to_string() })),
        }
    }
}

/// A JSON document stored as `TEXT`; text that is not JSON of type `T` is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText<T = serde_json::Value>(pub T);

impl From<JsonText> for serde_json::Value {
    fn from(json: JsonText) -> serde_json::Value {
        json.0
    }
}

/// A JSON object (`#[sqlx(try_from = "JsonText<JsonObject>")]`).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

impl From<JsonText<JsonObject>> for JsonObject {
    fn from(json: JsonText<JsonObject>) -> JsonObject {
        json.0
    }
}

/// A JSON list of strings (`#[sqlx(try_from = "JsonText<Vec<String>>")]`).
impl From<JsonText<Vec<String>>> for Vec<String> {
    fn from(json: JsonText<Vec<String>>) -> Vec<String> {
        json.0
    }
}

stored_as!(JsonText<T>: String);

impl<'r, T: serde::de::DeserializeOwned> Decode<'r, Any> for JsonText<T> {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Any>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(text)?))
    }
}

/// A nullable enum column: `#[sqlx(try_from = "Nullable<T>")]` on an `Option<T>` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nullable<T>(pub Option<T>);

impl<T> From<Nullable<T>> for Option<T> {
    fn from(value: Nullable<T>) -> Option<T> {
        value.0
    }
}

stored_as!(Nullable<T>: String);

impl<'r, T> Decode<'r, Any> for Nullable<T>
where
    T: TryFrom<String, Error = UnknownValue>,
{
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        use sqlx::ValueRef;
        if value.is_null() {
            return Ok(Nullable(None));
        }
        let text = <String as Decode<'r, Any>>::decode(value)?;
        Ok(Nullable(Some(T::try_from(text)?)))
    }
}

/// An unknown stored value met outside a row decoder: the same 500 as a decoding error.
impl From<UnknownValue> for crate::error::Problem {
    fn from(e: UnknownValue) -> Self {
        sqlx::Error::Decode(Box::new(e)).into()
    }
}

/// The first column of every row, typed: for a query built by a helper that only
/// makes `sqlx::query` (a `Condition`'s binds), where `query_scalar` cannot be used.
pub fn first_column<T>(rows: &[sqlx::any::AnyRow]) -> sqlx::Result<Vec<T>>
where
    T: for<'r> Decode<'r, Any> + Type<Any>,
{
    use sqlx::Row;
    rows.iter().map(|row| row.try_get(0)).collect()
}
