//! Every cell of the key-state table ([KS] in docs/model.md), written as its grid.

use super::*;

/// Columns, in the reference's order, with PendingReplicaDeletion sharing PendingDeletion's column.
const COLUMNS: [KeyState; 8] = [
    KeyState::Enabled,
    KeyState::Disabled,
    KeyState::PendingDeletion,
    KeyState::PendingReplicaDeletion,
    KeyState::PendingImport,
    KeyState::Unavailable,
    KeyState::Creating,
    KeyState::Updating,
];

/// Expected outcome per cell for an `EXTERNAL` key. `ok` succeeds; otherwise the footnote's
/// exception and the message after the ARN.
const GRID: [(Operation, [&str; 8]); 20] = {
    use Operation as O;
    const CRYPTO: [&str; 8] = ["ok", "dis", "pd", "pd", "pi", "ua", "cr", "ok"];
    const ALL_OK: [&str; 8] = ["ok"; 8];
    const ENABLE: [&str; 8] = ["ok", "ok", "pd", "pd", "pi", "ok", "cr", "up"];
    [
        (O::Encrypt, CRYPTO),
        (O::Decrypt, CRYPTO),
        (O::ReEncrypt, CRYPTO),
        (O::GenerateDataKey, CRYPTO),
        (O::GenerateDataKeyWithoutPlaintext, CRYPTO),
        (O::CreateGrant, ["ok", "dis", "pd", "pd", "pi", "ok", "cr", "ok"]),
        (O::RetireGrant, ALL_OK),
        (O::RevokeGrant, ALL_OK),
        (O::ListGrants, ALL_OK),
        (O::DescribeKey, ALL_OK),
        (O::EnableKey, ENABLE),
        (O::DisableKey, ENABLE),
        (O::ScheduleKeyDeletion, ["ok", "ok", "pd", "pd", "ok", "ok", "ok", "up"]),
        (O::CancelKeyDeletion, ["npd", "npd", "ok", "ok", "npd", "npd", "npd", "npd"]),
        (O::GetParametersForImport, ["ok", "ok", "pd", "pd", "ok", "uns", "cr", "up"]),
        (O::ImportKeyMaterial, ["ok", "ok", "pd", "pd", "ok", "uns", "cr", "ok"]),
        (O::DeleteImportedKeyMaterial, ["ok", "ok", "ok", "ok", "ok", "uns", "cr", "up"]),
        (O::RotateKeyOnDemand, ["ok", "dis", "pd", "pd", "pi", "uns", "cr", "up"]),
        (O::ListKeyRotations, ALL_OK),
        (O::EnableKeyRotation, ["ext"; 8]),
    ]
};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY: KeyIdx = KeyIdx(7);

/// The table's answer for `KEY`, its message worded as shown (with `ARN` for `KEY`).
fn worded(op: Operation, state: KeyState, origin: Origin) -> Result<(), (KmsException, String)> {
    admit(op, state, origin, KEY).map_err(|e| {
        let message = e.message(|k| {
            assert_eq!(k, KEY, "the message names the key asked about");
            ARN
        });
        (e.exception, message.into_owned())
    })
}

fn expected(code: &str) -> Result<(), (KmsException, String)> {
    let (e, what) = match code {
        "ok" => return Ok(()),
        "dis" => (KmsException::Disabled, "is disabled."),
        "pd" => (KmsException::InvalidState, "is pending deletion."),
        "pi" => (KmsException::InvalidState, "is pending import."),
        "ua" => (KmsException::InvalidState, "is unavailable."),
        "cr" => (KmsException::InvalidState, "is creating."),
        "up" => (KmsException::InvalidState, "is updating."),
        "npd" => (KmsException::InvalidState, "is not pending deletion."),
        "uns" => {
            (KmsException::UnsupportedOperation, "is in a custom key store, which is not valid for this operation.")
        }
        "ext" => (KmsException::UnsupportedOperation, "origin is EXTERNAL which is not valid for this operation."),
        other => panic!("unknown code {other}"),
    };
    Err((e, format!("{ARN} {what}")))
}

#[test]
fn every_cell_of_the_key_state_table_for_an_external_key() {
    let mut cells = 0;
    for (op, row) in GRID {
        for (state, code) in COLUMNS.iter().zip(row) {
            assert_eq!(worded(op, *state, Origin::External), expected(code), "{op} in {state}");
            cells += 1;
        }
    }
    assert_eq!(cells, Operation::TABLE.len() * KeyState::ALL.len(), "the grid covers the whole table");
}

#[test]
fn import_operations_on_an_aws_kms_key_are_unsupported_in_every_state() {
    for op in [Operation::GetParametersForImport, Operation::ImportKeyMaterial, Operation::DeleteImportedKeyMaterial] {
        for state in KeyState::ALL {
            let (exception, message) = worded(op, state, Origin::AwsKms).unwrap_err();
            assert_eq!(exception, KmsException::UnsupportedOperation, "{op} in {state}");
            assert_eq!(message, format!("{ARN} origin is AWS_KMS which is not valid for this operation."));
        }
    }
}

#[test]
fn automatic_rotation_of_an_aws_kms_key_follows_on_demand_rotation() {
    for state in KeyState::ALL {
        assert_eq!(
            worded(Operation::EnableKeyRotation, state, Origin::AwsKms),
            worded(Operation::RotateKeyOnDemand, state, Origin::AwsKms),
            "{state}"
        );
    }
}

#[test]
fn other_operations_do_not_depend_on_origin() {
    for (op, _) in GRID {
        if matches!(
            op,
            Operation::GetParametersForImport
                | Operation::ImportKeyMaterial
                | Operation::DeleteImportedKeyMaterial
                | Operation::EnableKeyRotation
        ) {
            continue;
        }
        for state in KeyState::ALL {
            assert_eq!(worded(op, state, Origin::AwsKms), worded(op, state, Origin::External), "{op} in {state}");
        }
    }
}

#[test]
fn exception_names_are_spelled_as_aws_spells_them() {
    let json = serde_json::to_string(&KmsException::InvalidState).unwrap();
    assert_eq!(json, "\"KMSInvalidStateException\"");
    assert_eq!(KmsException::InvalidState.as_str(), "KMSInvalidStateException");
    assert_eq!(KmsException::IncorrectKeyMaterial.as_str(), "IncorrectKeyMaterialException");
}

#[test]
fn operations_and_states_are_written_as_aws_writes_them() {
    // Messages and causes word them through Display: `DeleteImportedKeyMaterial by alice`.
    assert_eq!(Operation::DeleteImportedKeyMaterial.to_string(), "DeleteImportedKeyMaterial");
    assert_eq!(format!("{} in {}", Operation::Decrypt, KeyState::PendingImport), "Decrypt in PendingImport");
}
