//! The key-state table: which operations a key admits in each state, and the exact exception.
//!
//! A pure function of (operation, state, origin), transcribed from the AWS key-state table
//! ([KS], footnotes kept by number as the AWS page numbers them). Every cell is unit-tested below. Where the table
//! allows two exceptions for one cell, modelling decision D1 picks `KMSInvalidStateException`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::KeyIdx;

/// AWS's `KeyState` enum. kmsim reaches `Enabled`, `Disabled`, `PendingDeletion` and
/// `PendingImport`; the others exist so the table is complete (D14: multi-Region keys and custom
/// key stores are out of scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum KeyState {
    Creating,
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
    PendingReplicaDeletion,
    Unavailable,
    Updating,
}

impl KeyState {
    pub const ALL: [KeyState; 8] = [
        KeyState::Creating,
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::PendingImport,
        KeyState::PendingReplicaDeletion,
        KeyState::Unavailable,
        KeyState::Updating,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Creating => "Creating",
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::Unavailable => "Unavailable",
            KeyState::Updating => "Updating",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key's material comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Origin {
    #[serde(rename = "AWS_KMS")]
    AwsKms,
    #[serde(rename = "EXTERNAL")]
    External,
}

/// The AWS KMS exception names kmsim can produce, spelled exactly as AWS does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum KmsException {
    #[serde(rename = "AccessDeniedException")]
    AccessDenied,
    #[serde(rename = "DisabledException")]
    Disabled,
    #[serde(rename = "ExpiredImportTokenException")]
    ExpiredImportToken,
    #[serde(rename = "IncorrectKeyException")]
    IncorrectKey,
    #[serde(rename = "IncorrectKeyMaterialException")]
    IncorrectKeyMaterial,
    #[serde(rename = "InvalidCiphertextException")]
    InvalidCiphertext,
    #[serde(rename = "InvalidGrantIdException")]
    InvalidGrantId,
    #[serde(rename = "InvalidImportTokenException")]
    InvalidImportToken,
    #[serde(rename = "LimitExceededException")]
    LimitExceeded,
    #[serde(rename = "KMSInvalidStateException")]
    InvalidState,
    #[serde(rename = "NotFoundException")]
    NotFound,
    #[serde(rename = "UnsupportedOperationException")]
    UnsupportedOperation,
    #[serde(rename = "ValidationException")]
    Validation,
    #[serde(rename = "ThrottlingException")]
    Throttling,
}

impl KmsException {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KmsException::AccessDenied => "AccessDeniedException",
            KmsException::Disabled => "DisabledException",
            KmsException::ExpiredImportToken => "ExpiredImportTokenException",
            KmsException::IncorrectKey => "IncorrectKeyException",
            KmsException::IncorrectKeyMaterial => "IncorrectKeyMaterialException",
            KmsException::InvalidCiphertext => "InvalidCiphertextException",
            KmsException::InvalidGrantId => "InvalidGrantIdException",
            KmsException::InvalidImportToken => "InvalidImportTokenException",
            KmsException::LimitExceeded => "LimitExceededException",
            KmsException::InvalidState => "KMSInvalidStateException",
            KmsException::NotFound => "NotFoundException",
            KmsException::UnsupportedOperation => "UnsupportedOperationException",
            KmsException::Validation => "ValidationException",
            KmsException::Throttling => "ThrottlingException",
        }
    }
}

/// A refused KMS call: the exception and its message, as the API returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsError {
    pub exception: KmsException,
    pub message: KmsMessage,
}

// A record of a refused call stays within two cache lines (the records of a run are its biggest
// memory, and a failure-heavy run makes millions).
const _: () = assert!(std::mem::size_of::<KmsMessage>() == 16);
const _: () = assert!(std::mem::size_of::<KmsError>() <= 24);
const _: () = assert!(std::mem::size_of::<crate::engine::Record<crate::actors::Obs>>() <= 128);

/// The words of a KMS error. Sixteen bytes, so that a record of a refused call stays within
/// two cache lines: fixed words behind a thin reference (`&"..."`), and other words in one
/// allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmsMessage {
    /// Words fixed in the code.
    Fixed(&'static &'static str),
    /// A key's ARN, then fixed words: the key-state table's refusals. Kept as the key and
    /// worded when shown ([`KmsError::message`]): an outage refuses millions of calls, and
    /// sharing one string among all their records (an atomic count on every copy and drop)
    /// cost a failure-heavy run a tenth of its time.
    AfterArn(KeyIdx, &'static &'static str),
    /// Other words, made once.
    Text(Arc<String>),
}

impl From<&'static &'static str> for KmsMessage {
    fn from(words: &'static &'static str) -> Self {
        KmsMessage::Fixed(words)
    }
}

impl From<String> for KmsMessage {
    fn from(words: String) -> Self {
        KmsMessage::Text(Arc::new(words))
    }
}

impl KmsError {
    #[must_use]
    pub fn new(exception: KmsException, message: impl Into<KmsMessage>) -> Self {
        KmsError { exception, message: message.into() }
    }

    /// A refusal whose message is `key`'s ARN and then `words`.
    #[must_use]
    pub fn about_key(exception: KmsException, key: KeyIdx, words: &'static &'static str) -> Self {
        KmsError { exception, message: KmsMessage::AfterArn(key, words) }
    }

    /// The message, with keys named by `arn`.
    #[must_use]
    pub fn message<'a>(&'a self, arn: impl FnOnce(KeyIdx) -> &'a str) -> Cow<'a, str> {
        match &self.message {
            KmsMessage::Fixed(words) => Cow::Borrowed(words),
            KmsMessage::AfterArn(key, words) => Cow::Owned(format!("{} {words}", arn(*key))),
            KmsMessage::Text(words) => Cow::Borrowed(words.as_str()),
        }
    }
}

/// The operations of the key-state table that kmsim models, by their API names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Operation {
    CreateKey,
    DescribeKey,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    CreateGrant,
    RetireGrant,
    RevokeGrant,
    ListGrants,
    RotateKeyOnDemand,
    ListKeyRotations,
    EnableKeyRotation,
}

impl Operation {
    /// Every operation the table covers (`CreateKey` has no row: it makes the key).
    pub const TABLE: [Operation; 20] = [
        Operation::DescribeKey,
        Operation::EnableKey,
        Operation::DisableKey,
        Operation::ScheduleKeyDeletion,
        Operation::CancelKeyDeletion,
        Operation::GetParametersForImport,
        Operation::ImportKeyMaterial,
        Operation::DeleteImportedKeyMaterial,
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::ReEncrypt,
        Operation::GenerateDataKey,
        Operation::GenerateDataKeyWithoutPlaintext,
        Operation::CreateGrant,
        Operation::RetireGrant,
        Operation::RevokeGrant,
        Operation::ListGrants,
        Operation::RotateKeyOnDemand,
        Operation::ListKeyRotations,
        Operation::EnableKeyRotation,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CreateKey => "CreateKey",
            Operation::DescribeKey => "DescribeKey",
            Operation::EnableKey => "EnableKey",
            Operation::DisableKey => "DisableKey",
            Operation::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Operation::CancelKeyDeletion => "CancelKeyDeletion",
            Operation::GetParametersForImport => "GetParametersForImport",
            Operation::ImportKeyMaterial => "ImportKeyMaterial",
            Operation::DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::ReEncrypt => "ReEncrypt",
            Operation::GenerateDataKey => "GenerateDataKey",
            Operation::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Operation::CreateGrant => "CreateGrant",
            Operation::RetireGrant => "RetireGrant",
            Operation::RevokeGrant => "RevokeGrant",
            Operation::ListGrants => "ListGrants",
            Operation::RotateKeyOnDemand => "RotateKeyOnDemand",
            Operation::ListKeyRotations => "ListKeyRotations",
            Operation::EnableKeyRotation => "EnableKeyRotation",
        }
    }

    /// Whether the operation accepts an alias (`alias/...`) as its key identifier.
    #[must_use]
    pub fn accepts_alias(self) -> bool {
        matches!(
            self,
            Operation::DescribeKey
                | Operation::Encrypt
                | Operation::Decrypt
                | Operation::ReEncrypt
                | Operation::GenerateDataKey
                | Operation::GenerateDataKeyWithoutPlaintext
        )
    }

    /// The cryptographic operations.
    #[must_use]
    pub fn is_crypto(self) -> bool {
        matches!(
            self,
            Operation::Encrypt
                | Operation::Decrypt
                | Operation::ReEncrypt
                | Operation::GenerateDataKey
                | Operation::GenerateDataKeyWithoutPlaintext
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a key in `state`, of `origin`, admits `op`; if not, the exception AWS returns.
///
/// `key` only fills in the message (its ARN comes first).
#[allow(clippy::match_same_arms)] // one arm per cell group of the reference table, footnotes kept apart
pub fn admit(op: Operation, state: KeyState, origin: Origin, key: KeyIdx) -> Result<(), KmsError> {
    use KeyState as S;
    use KmsException as E;
    use Operation as O;
    let refuse = |e: KmsException, what: &'static &'static str| Err(KmsError::about_key(e, key, what));
    // Footnote numbers below are the reference table's.
    let pending_deletion = &"is pending deletion.";
    let import_op = matches!(op, O::GetParametersForImport | O::ImportKeyMaterial | O::DeleteImportedKeyMaterial);
    if import_op && origin != Origin::External {
        // [9]: the key cannot have imported material.
        let what = match origin {
            Origin::AwsKms => &"origin is AWS_KMS which is not valid for this operation.",
            Origin::External => unreachable!("an EXTERNAL key can have imported material"),
        };
        return refuse(E::UnsupportedOperation, what);
    }
    if op == O::EnableKeyRotation && origin == Origin::External {
        // [6]/[7]: automatic rotation is not supported for imported material.
        return refuse(E::UnsupportedOperation, &"origin is EXTERNAL which is not valid for this operation.");
    }
    let rotation = matches!(op, O::RotateKeyOnDemand | O::EnableKeyRotation);
    match (op, state) {
        (O::CreateKey, _) => Ok(()),
        (O::DescribeKey | O::RetireGrant | O::RevokeGrant | O::ListGrants | O::ListKeyRotations, _) => Ok(()),
        (_, S::Creating) if op != O::ScheduleKeyDeletion && op != O::CancelKeyDeletion => {
            refuse(E::InvalidState, &"is creating.") // [14]
        }
        (o, S::Enabled) if o.is_crypto() || o == O::CreateGrant => Ok(()),
        (o, S::Updating) if o.is_crypto() || o == O::CreateGrant || o == O::ImportKeyMaterial => Ok(()),
        (o, S::Disabled) if o.is_crypto() || o == O::CreateGrant => refuse(E::Disabled, &"is disabled."), // [1]
        // [2]/[3]: D1 picks KMSInvalidStateException.
        (o, S::PendingDeletion | S::PendingReplicaDeletion) if o.is_crypto() || o == O::CreateGrant => {
            refuse(E::InvalidState, pending_deletion)
        }
        (o, S::PendingImport) if o.is_crypto() || o == O::CreateGrant => refuse(E::InvalidState, &"is pending import."), // [5]
        (O::CreateGrant, S::Unavailable) => Ok(()),
        (o, S::Unavailable) if o.is_crypto() => refuse(E::InvalidState, &"is unavailable."), // [11]
        (O::EnableKey | O::DisableKey, S::Enabled | S::Disabled | S::Unavailable) => Ok(()), // [12]
        (O::EnableKey | O::DisableKey, S::PendingDeletion | S::PendingReplicaDeletion) => {
            refuse(E::InvalidState, pending_deletion) // [3]
        }
        (O::EnableKey | O::DisableKey, S::PendingImport) => refuse(E::InvalidState, &"is pending import."), // [5]
        (O::ScheduleKeyDeletion, S::PendingDeletion | S::PendingReplicaDeletion) => {
            refuse(E::InvalidState, pending_deletion) // [3]
        }
        (O::ScheduleKeyDeletion, S::Updating) => refuse(E::InvalidState, &"is updating."), // [15]
        (O::ScheduleKeyDeletion, _) => Ok(()),
        (O::CancelKeyDeletion, S::PendingDeletion | S::PendingReplicaDeletion) => Ok(()),
        (O::CancelKeyDeletion, _) => refuse(E::InvalidState, &"is not pending deletion."), // [4]
        (O::GetParametersForImport | O::ImportKeyMaterial, S::Enabled | S::Disabled | S::PendingImport) => Ok(()),
        (O::GetParametersForImport | O::ImportKeyMaterial, S::PendingDeletion | S::PendingReplicaDeletion) => {
            refuse(E::InvalidState, pending_deletion) // [8]
        }
        (O::GetParametersForImport | O::ImportKeyMaterial | O::DeleteImportedKeyMaterial, S::Unavailable) => {
            // [9]: keys in custom key stores cannot have imported material.
            refuse(E::UnsupportedOperation, &"is in a custom key store, which is not valid for this operation.")
        }
        (O::DeleteImportedKeyMaterial, S::Enabled | S::Disabled | S::PendingDeletion)
        | (O::DeleteImportedKeyMaterial, S::PendingReplicaDeletion | S::PendingImport) => Ok(()),
        // The 2023 table has no rows for on-demand rotation; the modelled errors suggest
        // EnableKeyRotation's pattern (the reference, "Rows the 2023 table does not have").
        (_, S::Enabled) if rotation => Ok(()),
        (_, S::Disabled) if rotation => refuse(E::Disabled, &"is disabled."), // [1]
        (_, S::PendingDeletion | S::PendingReplicaDeletion) if rotation => refuse(E::InvalidState, pending_deletion),
        (_, S::PendingImport) if rotation => refuse(E::InvalidState, &"is pending import."),
        (_, S::Unavailable) if rotation => {
            refuse(E::UnsupportedOperation, &"is in a custom key store, which is not valid for this operation.") // [7]
        }
        (_, S::Updating) => refuse(E::InvalidState, &"is updating."), // [15]
        (o, s) => unreachable!("key-state table has no cell for {o} in {s}"),
    }
}

#[cfg(test)]
mod tests;
