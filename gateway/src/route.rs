//! What the router knows about a request, for its metrics label, span name and `Allow`
//! header, read from the OpenAPI spec (no second, hand-written route table):
//!
//! - an answered operation carries its operation id (poem-openapi leaves it on the response
//!   or error), which the spec maps to its route template (`/match/{hash}`);
//! - anything else (a 405, `/metrics`, the docs) carries the pattern poem's router matched,
//!   whose parameters poem-openapi names `:param0`…; its shape finds the spec's template, and a
//!   route outside the spec keeps its own pattern;
//! - no route matched (at most the API's nest at `/`): `None` (the metrics say `other`).

use std::{collections::HashMap, sync::Arc};

use poem::PathPattern;
use poem_openapi::OperationId;

/// The spec's routes: templates by operation id, and templates with their methods by shape.
/// Templates are shared strings, so naming a request's route (every request, for its metrics)
/// allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    by_operation: HashMap<String, Arc<str>>,
    by_shape: HashMap<String, Route>,
}

#[derive(Debug, Clone)]
struct Route {
    template: Arc<str>,
    allow: String,
}

impl RouteTable {
    /// Reads the `paths` of an OpenAPI document (JSON).
    pub fn from_spec(spec: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut table = Self::default();
        let Some(paths) = doc["paths"].as_object() else {
            return table;
        };
        for (template, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            let template: Arc<str> = Arc::from(template.as_str());
            let mut methods = Vec::new();
            for (method, operation) in item {
                let method = method.to_uppercase();
                if !METHODS.contains(&method.as_str()) {
                    continue; // `parameters`, `summary`…
                }
                if let Some(id) = operation["operationId"].as_str() {
                    table
                        .by_operation
                        .insert(id.to_owned(), Arc::clone(&template));
                }
                if method == "GET" {
                    methods.push("HEAD".to_owned()); // poem answers HEAD on every GET route
                }
                methods.push(method);
            }
            methods.sort_by_key(|m| METHODS.iter().position(|k| k == m));
            table.by_shape.insert(
                shape(&openapi_style(&template)),
                Route {
                    template,
                    allow: methods.join(", "),
                },
            );
        }
        table
    }

    /// The route template of an answer: by its operation id, else by the pattern the router
    /// matched; `None` when no route matched.
    pub fn template(
        &self,
        operation: Option<&OperationId>,
        pattern: Option<&PathPattern>,
    ) -> Option<Arc<str>> {
        if let Some(template) = operation.and_then(|id| self.by_operation.get(id.0)) {
            return Some(Arc::clone(template));
        }
        let pattern = openapi_style(&pattern?.0);
        if pattern == "/" {
            return None; // only the API's nest at `/` matched: no route did
        }
        Some(match self.by_shape.get(&shape(&pattern)) {
            Some(route) => Arc::clone(&route.template),
            None => pattern.into(),
        })
    }

    /// The `Allow` value of a template in the spec.
    pub fn allow(&self, template: &str) -> Option<&str> {
        self.by_shape
            .get(&shape(&openapi_style(template)))
            .map(|route| route.allow.as_str())
    }
}

/// The methods an `Allow` header may list, in the order it lists them.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// poem's pattern syntax (`/match/:param0`, `/docs/*path`) as OpenAPI's (`/match/{param0}`),
/// with the doubled slash of a service nested at `/` removed.
fn openapi_style(pattern: &str) -> String {
    let segments: Vec<String> = pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| match segment.strip_prefix([':', '*']) {
            Some(name) => format!("{{{name}}}"),
            None => segment.to_owned(),
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// A template (in [`openapi_style`]) with its parameter names dropped (`/match/{}`), to pair
/// poem's patterns with the spec's templates.
fn shape(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"paths": {
        "/scan/url": {"post": {"operationId": "scanUrl"}},
        "/match/{hash}": {"get": {"operationId": "getMatches"}, "parameters": []}
    }}"#;

    #[test]
    fn operation_ids_name_their_templates() {
        let table = RouteTable::from_spec(SPEC);
        let id = OperationId("getMatches");
        let pattern = PathPattern("/match/:param0".into());
        assert_eq!(
            table.template(Some(&id), Some(&pattern)).as_deref(),
            Some("/match/{hash}")
        );
    }

    #[test]
    fn patterns_without_an_operation_find_the_spec_template_by_shape() {
        let table = RouteTable::from_spec(SPEC);
        let pattern = |p: &str| PathPattern(p.into());
        assert_eq!(
            table
                .template(None, Some(&pattern("//match/:param0")))
                .as_deref(),
            Some("/match/{hash}")
        );
        assert_eq!(
            table.template(None, Some(&pattern("/metrics"))).as_deref(),
            Some("/metrics")
        );
        assert_eq!(table.template(None, None), None);
        assert_eq!(table.template(None, Some(&pattern("/"))), None);
    }

    #[test]
    fn allowed_methods_come_from_the_spec() {
        let table = RouteTable::from_spec(SPEC);
        assert_eq!(table.allow("/scan/url"), Some("POST"));
        assert_eq!(table.allow("/match/{hash}"), Some("GET, HEAD"));
        assert_eq!(table.allow("/nope"), None);
    }
}
