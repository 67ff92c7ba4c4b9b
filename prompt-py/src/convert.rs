//! Python objects ↔ JSON values, the one bridge every argument and result crosses.
//!
//! Arguments arrive as Python objects and become [`serde_json::Value`]s (a wrong type is
//! a `TypeError` naming where it was found); domain results are serialised with serde and
//! come back as plain `dict`/`list`/`str`/`int`/`float`/`bool`/`None`. The typed Python
//! classes (`prompt_registry.Prompt`, …) are built from those dicts in pure Python.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted, so that a self-referencing list cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// A Python object as JSON. `path` names the argument in error messages.
pub fn to_json(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    to_json_at(obj, &At::Root(path), 0)
}

/// Where a value is (`variables.user.tags[2]`), written out only when an error names
/// it: converting a dict of variables builds no path strings.
enum At<'a> {
    Root(&'a str),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root(p) => f.write_str(p),
            At::Key(parent, k) => write!(f, "{parent}.{k}"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn to_json_at(obj: &Bound<'_, PyAny>, path: &At<'_>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{path}: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: in Python `True` is an `int`.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::Number(u.into()));
        }
        return Err(PyValueError::new_err(format!(
            "{path}: integer out of the 64-bit range"
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            PyValueError::new_err(format!(
                "{path}: {v} is not a finite number (JSON has no NaN/inf)"
            ))
        });
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{path}: dict keys must be str, got {}",
                    type_name(&k)
                ))
            })?;
            let key = key.to_cow()?.into_owned();
            let value = to_json_at(&v, &At::Key(path, &key), depth + 1)?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let mut out = Vec::with_capacity(l.len());
        for (i, v) in l.iter().enumerate() {
            out.push(to_json_at(&v, &At::Index(path, i), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        let mut out = Vec::with_capacity(t.len());
        for (i, v) in t.iter().enumerate() {
            out.push(to_json_at(&v, &At::Index(path, i), depth + 1)?);
        }
        return Ok(Value::Array(out));
    }
    Err(PyTypeError::new_err(format!(
        "{path}: {} is not JSON-compatible (use dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// A JSON value as plain Python objects.
pub fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let l = PyList::empty(py);
            for item in a {
                l.append(from_json(py, item)?)?;
            }
            l.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, item) in m {
                d.set_item(k, from_json(py, item)?)?;
            }
            d.into_any()
        }
    })
}

/// Any serialisable result as plain Python objects.
pub fn to_py<'py, T: Serialize>(py: Python<'py>, t: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(t)
        .map_err(|e| crate::error::to_py_err(py, prompt_core::Error::internal(e.to_string())))?;
    from_json(py, &v)
}

/// A JSON value as a domain type; a mismatch is `InvalidInput` on the offending field
/// (its path, e.g. `status` or `page.limit`), or on `field` when it is the whole value.
pub fn parse<T: DeserializeOwned>(v: Value, field: &str) -> prompt_core::Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let name = if path.is_empty() || path == "." {
            field.to_owned()
        } else {
            path
        };
        prompt_core::Error::invalid(name, e.into_inner().to_string())
    })
}

/// [`parse`] for one element of a list argument: a mismatch is named `at.path` (e.g.
/// `ops[2].version.template`), or `at` when it is the whole element.
pub fn parse_at<T: DeserializeOwned>(v: Value, at: &str) -> prompt_core::Result<T> {
    parse(v, at).map_err(|e| match &e {
        prompt_core::Error::InvalidInput { field, .. } if field != at => e.in_field(at),
        _ => e,
    })
}

/// An optional Python int as a `u32` field (version, limit): negative or too large is
/// `InvalidInput` on `field` (raised as `ValidationError`, a `ValueError`).
pub fn opt_u32(v: Option<i64>, field: &str) -> prompt_core::Result<Option<u32>> {
    v.map(|n| {
        u32::try_from(n)
            .map_err(|_| prompt_core::Error::invalid(field, format!("{n} is out of range")))
    })
    .transpose()
}
