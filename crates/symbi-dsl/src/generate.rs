//! Generated programs for benchmarks and fuzz seeds: valid, realistic and as large as
//! asked (`generate_program(10 << 20)` is the 10 MB program of the throughput benchmark).
//!
//! Each unit is a type, a function, a memory store and an agent with a policy and a
//! `with` block using most statement and expression forms; names carry the unit number so
//! that the program also passes name resolution (no duplicate items).
//!
//! ```
//! let src = symbi_dsl::generate::generate_program(20_000);
//! assert!(src.len() >= 20_000);
//! assert!(!symbi_dsl::parse(&src, "gen.symbi").has_errors());
//! ```

use std::fmt::Write as _;

/// A valid program of at least `target_bytes` bytes.
pub fn generate_program(target_bytes: usize) -> String {
    let mut out = String::with_capacity(target_bytes + 4096);
    out.push_str("// Generated benchmark program.\nmetadata {\n    version: \"1.0.0\",\n    description: \"generated\",\n}\n\n");
    let mut i = 0usize;
    while out.len() < target_bytes {
        unit(&mut out, i);
        i += 1;
    }
    out
}

fn unit(out: &mut String, i: usize) {
    let _ = write!(
        out,
        r#"type Item{i} = {{
    sku: String,
    qty: int,
    price: float,
    tags: Array<String>,
}}

function total{i}(items: Array<Item{i}>, discount: Option<float>) -> float {{
    let sum = 0.0;
    for item in items {{
        if item.qty <= 0 {{
            return error("bad quantity for " + item.sku, kind: "ValidationError");
        }}
        sum += item.qty * item.price;
    }}
    if let Some(d) = discount {{
        sum = sum * (1.0 - d);
    }}
    round(sum, 2)
}}

memory store{i} {{
    store     markdown
    path      "data/store{i}"
    retention 90d
    search {{
        vector_weight  0.7
        keyword_weight 0.3
    }}
}}

agent worker{i}(items: Array<Item{i}>, mode: String, limit: int) -> Map<String, Any> {{
    capabilities = ["memory_read", "memory_write", "publish"]

    policy rules{i} {{
        allow: ["memory_read", "memory_write"]
        allow: publish(topic) if topic.name.starts_with("orders/") && limit < 1000
        deny: ["network_access", "file_access"]
        require: {{ rate_limiting: "30/minute", tls_verification: true }}
        audit: {{ log_level: "info", include_output: false }}
    }}

    with memory = "ephemeral", sandbox = "Tier1", timeout = 30s, max_memory = 64MB {{
        let problems = [];
        let counts = {{ small: 0, large: 0, "very large": 0 }};
        let t = 0.0;
        try {{
            t = total{i}(items, discount: if mode == "sale" {{ 0.25 }} else {{ null }});
        }} catch (ValidationError e) {{
            problems.push(e.message);
        }}
        for item in items {{
            match item.qty {{
                0 => {{ continue; }}
                1 => {{ counts.small += 1; }}
                _ => {{
                    if item.qty > 100 {{ counts["very large"] += 1; }} else {{ counts.large += 1; }}
                }}
            }}
        }}
        let i = 0;
        while i < limit && i < len(items) {{
            if items[i].tags.any(t => t == "urgent") {{
                publish("orders/urgent", {{ sku: items[i].sku, at: now(), n: i * 2 + 1 }});
                break;
            }}
            i += 1;
        }}
        let labels = items.map(it => if it.price >= 10.5 {{ "premium" }} else {{ "standard" }});
        let id = memory_write(store{i}, {{ total: t, labels: labels, count: len(items), ok: not (len(problems) > 0) }});
        return {{ id: id, total: t, counts: counts, problems: problems, vault: "vault://orders/key{i}" }};
    }}
}}

"#
    );
}

/// A JSON document of at least `target_bytes` bytes with a similar mix of objects,
/// arrays, strings and numbers (the baseline of the parse benchmark).
pub fn generate_json(target_bytes: usize) -> String {
    let mut out = String::with_capacity(target_bytes + 1024);
    out.push_str("{\"units\":[");
    let mut i = 0usize;
    while out.len() < target_bytes {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"type":{{"name":"Item{i}","fields":[{{"sku":"String"}},{{"qty":"int"}},{{"price":"float"}},{{"tags":"Array<String>"}}]}},"function":{{"name":"total{i}","params":["items","discount"],"body":[{{"let":"sum","value":0.0}},{{"for":"item","in":"items","body":[{{"if":{{"le":["item.qty",0]}},"then":[{{"return":{{"call":"error","args":["bad quantity for ",{{"kind":"ValidationError"}}]}}}}]}},{{"add_assign":["sum",{{"mul":["item.qty","item.price"]}}]}}]}}]}},"agent":{{"name":"worker{i}","capabilities":["memory_read","memory_write","publish"],"policy":{{"allow":["memory_read","memory_write"],"deny":["network_access","file_access"],"require":{{"rate_limiting":"30/minute","tls_verification":true}},"audit":{{"log_level":"info","include_output":false}}}},"with":{{"memory":"ephemeral","sandbox":"Tier1","timeout":30000,"max_memory":67108864}},"body":[{{"let":"counts","value":{{"small":0,"large":0,"very large":0}}}},{{"while":{{"and":[{{"lt":["i","limit"]}},{{"lt":["i",{{"len":"items"}}]}}]}},"body":[{{"publish":["orders/urgent",{{"sku":"x","n":{i}}}]}}]}},{{"return":{{"id":"id","total":"t","counts":"counts","problems":[],"vault":"vault://orders/key{i}"}}}}]}}}}"#
        );
        i += 1;
    }
    out.push_str("]}");
    out
}
