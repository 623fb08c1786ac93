//! The contract's sample order (`tests/fixtures/sample-order.json`) and changed copies of it:
//! with values replaced, without a field, and its leaves as JSON pointer and field path. The
//! unit tests of the contract (`src/order/contract_tests.rs`) have their own copy: test
//! binaries cannot share code with a library's unit tests.

use serde_json::Value;

/// The sample order from the contract.
pub const SAMPLE: &str = include_str!("../fixtures/sample-order.json");

/// The sample order's id (also the example id of the OpenAPI document).
pub const SAMPLE_UID: &str = "b563feb7b2b84b6test";

/// The sample as a JSON value.
pub fn sample() -> Value {
    serde_json::from_str(SAMPLE).expect("the sample is JSON")
}

/// `value`'s JSON bytes.
pub fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

/// The sample with the value at each JSON pointer replaced.
pub fn with_all(changes: &[(&str, Value)]) -> Vec<u8> {
    let mut doc = sample();
    for (ptr, value) in changes {
        *doc.pointer_mut(ptr).unwrap_or_else(|| panic!("no {ptr}")) = value.clone();
    }
    bytes(&doc)
}

/// The sample with the value at JSON pointer `ptr` replaced by `value`.
pub fn with(ptr: &str, value: Value) -> Vec<u8> {
    with_all(&[(ptr, value)])
}

/// The sample without the field at JSON pointer `ptr`.
pub fn without(ptr: &str) -> Vec<u8> {
    let mut doc = sample();
    let (parent, name) = ptr.rsplit_once('/').expect("a pointer");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .remove(name)
        .unwrap_or_else(|| panic!("no field {ptr}"));
    bytes(&doc)
}

/// The field path a rejection names for JSON pointer `ptr`: `/items/0/price` is
/// `items[0].price`.
pub fn field(ptr: &str) -> String {
    ptr[1..].replace("/0/", "[0].").replace('/', ".")
}

/// Every leaf of the sample (the first item standing for all) as (JSON pointer, field path).
pub fn leaves() -> Vec<(String, String)> {
    fn walk(value: &Value, ptr: String, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    walk(child, format!("{ptr}/{key}"), out);
                }
            }
            Value::Array(items) => walk(&items[0], format!("{ptr}/0"), out),
            _ => {
                let field = field(&ptr);
                out.push((ptr, field));
            }
        }
    }
    let mut out = Vec::new();
    walk(&sample(), String::new(), &mut out);
    out
}
