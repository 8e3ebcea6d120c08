//! `ordo contract deploy|call|read`: EVM contracts from the command line.
//!
//! ABI work goes through the alloy ABI crates: a constructor's or function's argument
//! types come from the contract's ABI (deploy) or from the signature the user gives
//! (`'transfer(address,uint256)'`, optionally with `returns (bool)`), each argument is
//! parsed as its type, and return values, events and revert reasons are decoded. `deploy`
//! and `call` sign a transaction and follow it like `ordo transfer`; `read` is a read-only
//! call against the node's latest executed state, with no transaction.

use std::path::Path;

use alloy_dyn_abi::{DynSolType, DynSolValue, EventExt, FunctionExt, JsonAbiExt, Specifier};
use alloy_json_abi::{Function, JsonAbi, Param};
use anyhow::Result;
use ordo_execution::contracts::{self, Artifact};
use ordo_types::{Address, Payload};
use serde_json::{json, Value};

use super::endpoint::Target;
use super::errors::ClientError;
use super::parse;
use super::submit;
use crate::cli::{ContractCallArgs, ContractDeployArgs, ContractFunctionArgs, ContractReadArgs};
use crate::output::{self, Output};

/// The compiled contract `spec` names: a built-in example or a build JSON file.
fn artifact(spec: &str) -> Result<Artifact, ClientError> {
    if let Some(a) = contracts::artifact(spec) {
        return Ok(a);
    }
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Input(format!("{spec}: {e}")))?;
        return contracts::parse_artifact(&text)
            .map_err(|e| ClientError::Input(format!("{spec}: {e}")));
    }
    let names: Vec<&str> = contracts::names().collect();
    Err(ClientError::Input(format!(
        "{spec:?} is neither a built-in contract ({}) nor a build file with \"abi\" and \"bytecode\"",
        names.join(", ")
    )))
}

fn abi_of(artifact: &Artifact) -> Result<JsonAbi, ClientError> {
    serde_json::from_value(artifact.abi.clone())
        .map_err(|e| ClientError::Input(format!("{}: the ABI does not parse: {e}", artifact.name)))
}

/// Parses each argument as its parameter's type.
fn values(params: &[Param], args: &[String], what: &str) -> Result<Vec<DynSolValue>, ClientError> {
    if params.len() != args.len() {
        let types: Vec<String> = params
            .iter()
            .map(|p| p.selector_type().into_owned())
            .collect();
        return Err(ClientError::Input(format!(
            "{what} takes {} argument(s) ({}), got {}",
            params.len(),
            types.join(", "),
            args.len()
        )));
    }
    params
        .iter()
        .zip(args)
        .map(|(param, arg)| {
            let ty: DynSolType = param
                .resolve()
                .map_err(|e| ClientError::Input(format!("{what}: type {}: {e}", param.ty)))?;
            ty.coerce_str(arg).map_err(|e| {
                ClientError::Input(format!("{what}: {arg:?} is not a {}: {e}", param.ty))
            })
        })
        .collect()
}

/// A function from a signature: `name(types)` or `name(types) returns (types)`.
fn function(signature: &str) -> Result<Function, ClientError> {
    let text = signature.trim();
    let text = text.strip_prefix("function ").unwrap_or(text);
    Function::parse(text).map_err(|e| {
        ClientError::Input(format!(
            "{signature:?} is not a function signature such as 'transfer(address,uint256)' \
             or 'balanceOf(address) returns (uint256)': {e}"
        ))
    })
}

/// A decoded value as text: numbers in decimal, addresses and bytes in 0x hex.
fn show(value: &DynSolValue) -> Value {
    match value {
        DynSolValue::Bool(b) => json!(b),
        DynSolValue::Int(i, _) => json!(i.to_string()),
        DynSolValue::Uint(u, _) => json!(u.to_string()),
        DynSolValue::Address(a) => json!(format!("{a:#x}")),
        DynSolValue::String(s) => json!(s),
        DynSolValue::Bytes(b) => json!(format!("0x{}", hex::encode(b))),
        DynSolValue::FixedBytes(w, n) => json!(format!("0x{}", hex::encode(&w[..*n]))),
        DynSolValue::Function(f) => json!(format!("0x{}", hex::encode(f.as_slice()))),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(show).collect())
        }
    }
}

fn unhex(text: &str) -> Vec<u8> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).unwrap_or_default()
}

/// Decodes revert data: `Error(string)`, `Panic(uint256)`, or a custom error of `abi`.
fn revert_reason(data: &[u8], abi: Option<&JsonAbi>) -> Option<String> {
    if let Some(reason) = alloy_sol_types::decode_revert_reason(data) {
        return Some(reason);
    }
    let abi = abi?;
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let error = abi.errors().find(|e| e.selector() == selector)?;
    let args = error.abi_decode_input(&data[4..]).ok()?;
    let args: Vec<String> = args.iter().map(|v| show(v).to_string()).collect();
    Some(format!("{}({})", error.name, args.join(", ")))
}

/// Adds decoded events to the node's `evm.logs`, where `abi` knows them.
fn decode_logs(evm: &mut Value, abi: Option<&JsonAbi>) {
    let (Some(abi), Some(logs)) = (abi, evm.get_mut("logs").and_then(Value::as_array_mut)) else {
        return;
    };
    for log in logs {
        let topics: Vec<alloy_primitives::B256> = log["topics"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str())
                    .filter_map(|t| t.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let data = unhex(log["data"].as_str().unwrap_or(""));
        let Some(first) = topics.first() else {
            continue;
        };
        let Some(event) = abi.events().find(|e| e.selector() == *first) else {
            continue;
        };
        if let Ok(decoded) = event.decode_log_parts(topics.iter().copied(), &data) {
            let mut indexed = decoded.indexed.iter();
            let mut body = decoded.body.iter();
            let mut fields = serde_json::Map::new();
            for input in &event.inputs {
                let v = if input.indexed {
                    indexed.next()
                } else {
                    body.next()
                };
                if let Some(v) = v {
                    fields.insert(input.name.clone(), show(v));
                }
            }
            log["event"] = json!(event.name);
            log["args"] = Value::Object(fields);
        }
    }
}

/// What deploy and call add to a followed transaction's report: the revert reason, the
/// decoded return values and events.
fn decorate(report: &mut Value, abi: Option<&JsonAbi>, returns: Option<&Function>) {
    let Some(evm) = report.get_mut("evm") else {
        return;
    };
    let output = unhex(evm["output"].as_str().unwrap_or(""));
    if report_status(report) == Some("reverted") {
        if let Some(reason) = revert_reason(&output, abi) {
            report["revert_reason"] = json!(reason);
        }
        return;
    }
    if let Some(evm) = report.get_mut("evm") {
        decode_logs(evm, abi);
    }
    if let Some(f) = returns.filter(|f| !f.outputs.is_empty()) {
        if let Ok(values) = f.abi_decode_output(&output) {
            report["returns"] = Value::Array(values.iter().map(show).collect());
        }
    }
}

fn shown_reason(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map_or_else(String::new, |r| format!(": {r}"))
}

fn report_status(report: &Value) -> Option<&str> {
    report["execution_status"].as_str()
}

pub fn deploy(args: &ContractDeployArgs, target: &Target, out: &Output) -> Result<()> {
    let artifact = artifact(&args.contract)?;
    let abi = abi_of(&artifact)?;
    let params = abi
        .constructor()
        .map(|c| c.inputs.clone())
        .unwrap_or_default();
    let values = values(&params, &args.args, "the constructor")?;
    let mut init_code = artifact.bytecode.clone();
    if let Some(constructor) = abi.constructor() {
        init_code.extend(
            constructor
                .abi_encode_input(&values)
                .map_err(|e| ClientError::Input(format!("the constructor's arguments: {e}")))?,
        );
    }
    let payload = Payload::Deploy {
        init_code,
        value: args.value,
        gas_limit: args.gas,
    };
    submit::submit_with(payload, &args.submit, target, out, &|report| {
        decorate(report, Some(&abi), None);
        if let Some(created) = report["evm"]["created"].as_str() {
            report["contract"] = json!(created);
        }
    })
}

pub fn call(args: &ContractCallArgs, target: &Target, out: &Output) -> Result<()> {
    let (to, f, input) = encoded_call(&args.function)?;
    let abi = match &args.abi {
        Some(spec) => Some(abi_of(&artifact(spec)?)?),
        None => None,
    };
    let payload = Payload::Call {
        to,
        input,
        value: args.value,
        gas_limit: args.gas,
    };
    submit::submit_with(payload, &args.submit, target, out, &|report| {
        decorate(report, abi.as_ref(), Some(&f))
    })
}

/// The contract, the parsed function and its encoded call.
fn encoded_call(args: &ContractFunctionArgs) -> Result<(Address, Function, Vec<u8>)> {
    let to = parse::address(&args.address, "the contract")?;
    let f = function(&args.signature)?;
    let values = values(&f.inputs, &args.args, &f.signature())?;
    let input = f
        .abi_encode_input(&values)
        .map_err(|e| ClientError::Input(format!("{}: {e}", f.signature())))?;
    Ok((to, f, input))
}

pub fn read(args: &ContractReadArgs, target: &Target, out: &Output) -> Result<()> {
    let (to, f, input) = encoded_call(&args.function)?;
    let from = match &args.from {
        Some(from) => parse::address(from, "--from")?,
        None => Address::default(),
    };
    let abi = match &args.abi {
        Some(spec) => Some(abi_of(&artifact(spec)?)?),
        None => None,
    };
    let rpc = target.connect()?;
    let body = json!({
        "to": to,
        "from": from,
        "input": format!("0x{}", hex::encode(&input)),
        "gas": args.gas,
    });
    let mut answer = rpc.post_json("/v1/contract/read", &body)?;
    let output = unhex(answer["output"].as_str().unwrap_or(""));
    let status = answer["status"].as_str().unwrap_or("").to_string();
    if status == "success" {
        if let Ok(values) = f.abi_decode_output(&output) {
            answer["returns"] = Value::Array(values.iter().map(show).collect());
        }
    } else if let Some(reason) = revert_reason(&output, abi.as_ref()) {
        answer["revert_reason"] = json!(reason);
    }
    let shown = answer.clone();
    let answer_reason = answer["revert_reason"]
        .as_str()
        .or(answer["reason"].as_str())
        .map(String::from);
    out.emit(answer, || {
        let mut rows = vec![("status", status.clone())];
        if let Some(values) = shown["returns"].as_array() {
            for v in values {
                rows.push((
                    "returns",
                    v.as_str().map_or_else(|| v.to_string(), String::from),
                ));
            }
        }
        if let Some(reason) = shown["revert_reason"].as_str() {
            rows.push(("revert", reason.to_string()));
        }
        rows.push(("gas", shown["gas_used"].to_string()));
        rows.push(("height", shown["height"].to_string()));
        output::rows(&rows)
    });
    if status == "success" {
        Ok(())
    } else {
        Err(ClientError::CallFailed {
            status,
            reason: shown_reason(&answer_reason),
        }
        .into())
    }
}
