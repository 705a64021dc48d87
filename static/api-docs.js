// Renders /api/openapi.json as a readable list of operations and schemas.
// Served by Portico itself: no CDN, no inline script, DOM built with
// textContent only (the document is data, never HTML).
"use strict";

(function () {
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function schemaText(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.replace("#/components/schemas/", "");
    if (schema.type === "array") return schemaText(schema.items) + "[]";
    if (schema.oneOf) return schema.oneOf.map(schemaText).join(" | ");
    if (Array.isArray(schema.type)) return schema.type.join(" | ");
    return schema.type || "any";
  }

  function operation(path, method, op) {
    var section = el("section", null, "card");
    section.appendChild(el("h3", method.toUpperCase() + " " + path, "mono"));
    if (op.summary) section.appendChild(el("p", op.summary));
    if (op.description) section.appendChild(el("p", op.description, "muted"));
    section.appendChild(el("p", op.security ? "Needs a key (x-api-key or Bearer) or a dashboard session." : "Public.", "muted"));
    (op.parameters || []).forEach(function (p) {
      section.appendChild(el("p", p["in"] + " parameter " + p.name + ": " + (p.description || schemaText(p.schema)), "mono"));
    });
    if (op.requestBody && op.requestBody.content) {
      Object.keys(op.requestBody.content).forEach(function (type) {
        section.appendChild(el("p", "Body (" + type + "): " + schemaText(op.requestBody.content[type].schema), "mono"));
      });
    }
    var list = el("ul", null, "plain");
    Object.keys(op.responses || {}).forEach(function (status) {
      var response = op.responses[status];
      var body = "";
      if (response.content) {
        body = Object.keys(response.content).map(function (type) {
          return schemaText(response.content[type].schema) || type;
        }).join(", ");
      }
      list.appendChild(el("li", status + " " + (response.description || "") + (body ? " → " + body : ""), "mono"));
    });
    section.appendChild(list);
    return section;
  }

  function schemas(components) {
    var wrap = el("section", null, "card");
    wrap.appendChild(el("h2", "Schemas"));
    Object.keys((components && components.schemas) || {}).sort().forEach(function (name) {
      var schema = components.schemas[name];
      wrap.appendChild(el("h3", name, "mono"));
      if (schema.description) wrap.appendChild(el("p", schema.description, "muted"));
      var fields = el("ul", null, "plain");
      var required = schema.required || [];
      Object.keys(schema.properties || {}).forEach(function (field) {
        var property = schema.properties[field];
        var line = field + (required.indexOf(field) >= 0 ? "" : "?") + ": " + schemaText(property);
        if (property.description) line += " — " + property.description;
        fields.appendChild(el("li", line, "mono"));
      });
      if (schema["enum"]) fields.appendChild(el("li", "one of: " + schema["enum"].join(", "), "mono"));
      wrap.appendChild(fields);
    });
    return wrap;
  }

  function render(doc) {
    var target = document.getElementById("api-docs-content");
    target.textContent = "";
    target.appendChild(el("p", (doc.info && doc.info.description) || ""));
    Object.keys(doc.paths || {}).sort().forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        target.appendChild(operation(path, method, doc.paths[path][method]));
      });
    });
    target.appendChild(schemas(doc.components));
  }

  document.addEventListener("DOMContentLoaded", function () {
    fetch("/api/openapi.json", { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(render)
      .catch(function (err) {
        document.getElementById("api-docs-content").textContent = "The document could not be loaded: " + err;
      });
  });
})();
