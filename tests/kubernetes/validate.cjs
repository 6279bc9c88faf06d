// Validates Kubernetes objects against the API's OpenAPI schemas and the
// Prometheus Operator's CRD schemas, strictly: a field the schema does not
// name is an error, as `kubectl apply` (strict field validation) makes it.
//
//   node validate.cjs NODE_MODULES < objects.json
//
// objects.json: [{"source": "...", "object": {...}}, ...]. Prints one JSON
// line per object, {"source", "kind", "name", "schema", "errors": [...]},
// then a summary line; exits 1 when any object has errors or no schema, 2 on
// bad input.
//
// The schemas are the JSON Schema forms of the OpenAPI documents that the
// npm packages kubernetes-models and @kubernetes-models/prometheus-operator
// ship (versions pinned in package-lock.json; their Kubernetes and operator
// versions in VERSIONS below). Those packages register each schema with
// their own validator; here their registration is caught instead, every
// object schema that lists its properties is closed
// (additionalProperties: false, as kubeconform's -strict does), and Ajv
// compiles them.
"use strict";

const fs = require("fs");
const Module = require("module");
const path = require("path");

const nodeModules = path.resolve(process.argv[2] || "node_modules");
const fromHere = (name) => path.join(nodeModules, name);

// What each pinned package was generated from (their CHANGELOG.md).
const VERSIONS = {
  "kubernetes-models@4.3.1": "Kubernetes v1.27.1",
  "@kubernetes-models/prometheus-operator@4.0.0": "prometheus-operator v0.57.0 CRDs",
};

// id -> schema, as the packages register them.
const schemas = new Map();
const originalLoad = Module._load;
Module._load = function load(request, parent, isMain) {
  if (request === "@kubernetes-models/validate") {
    return {
      register: (id, schema) => schemas.set(id, schema),
      validate: () => {},
    };
  }
  if (request === "@kubernetes-models/base") {
    // The operator's models register their schema when first validated;
    // register it at once.
    return {
      Model: class {},
      createTypeMetaGuard: () => () => false,
      setSchema: (model, id, addSchema) => addSchema(),
    };
  }
  return originalLoad.call(this, request, parent, isMain);
};

function packageVersion(name) {
  const pkg = JSON.parse(fs.readFileSync(path.join(fromHere(name), "package.json"), "utf8"));
  return `${name}@${pkg.version}`;
}

function loadSchemas() {
  for (const dir of [
    fromHere("@kubernetes-models/apimachinery/_schemas"),
    fromHere("kubernetes-models/_schemas"),
  ]) {
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".js")).sort()) {
      const schemaModule = require(path.join(dir, file));
      if (typeof schemaModule.addSchema === "function") schemaModule.addSchema();
    }
  }
  const operator = fromHere("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1");
  for (const file of fs.readdirSync(operator).filter((f) => f.endsWith(".js")).sort()) {
    if (file !== "index.js") require(path.join(operator, file));
  }
}

// Closes every object schema that names its properties: unknown fields are
// errors. Schemas that name none (labels, annotations, free-form JSON) stay
// open, as in the API.
function closeObjects(node) {
  if (Array.isArray(node)) {
    node.forEach(closeObjects);
    return node;
  }
  if (node === null || typeof node !== "object") return node;
  if (node.properties && typeof node.properties === "object" &&
      node.additionalProperties === undefined) {
    node.additionalProperties = false;
  }
  for (const value of Object.values(node)) closeObjects(value);
  return node;
}

// Formats of the Kubernetes OpenAPI documents that ajv-formats lacks.
function addKubernetesFormats(ajv) {
  const integerIn = (low, high) => ({
    type: "number",
    validate: (x) => Number.isInteger(x) && x >= low && x <= high,
  });
  ajv.addFormat("int32", integerIn(-(2 ** 31), 2 ** 31 - 1));
  ajv.addFormat("int64", integerIn(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  ajv.addFormat("double", { type: "number", validate: (x) => Number.isFinite(x) });
  ajv.addFormat("float", { type: "number", validate: (x) => Number.isFinite(x) });
  ajv.addFormat("byte", /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  // resource.Quantity: 500m, 64Mi, 1e3, 0.5.
  ajv.addFormat("quantity", /^[+-]?(?:\d+|\d+\.\d*|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/);
  ajv.addFormat("int-or-string", { validate: () => true });
  ajv.addFormat("string", { type: "string", validate: () => true });
}

function buildAjv() {
  const Ajv = require(fromHere("ajv"));
  const addFormats = require(fromHere("ajv-formats"));
  // strict: an unknown keyword or format in a schema is an error, not
  // silently ignored; strictTypes is off because the API's schemas leave
  // out "type: object" beside "properties" in places.
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  addKubernetesFormats(ajv);
  for (const [id, schema] of schemas) ajv.addSchema(closeObjects(structuredClone(schema)), id);
  return ajv;
}

// "apps/v1 DaemonSet" -> schema id, from the apiVersion and kind enums that
// each top-level schema carries.
function kindIndex() {
  const index = new Map();
  for (const [id, schema] of schemas) {
    const props = schema.properties || {};
    const versions = (props.apiVersion && props.apiVersion.enum) || [];
    const kinds = (props.kind && props.kind.enum) || [];
    for (const version of versions) for (const kind of kinds) index.set(`${version} ${kind}`, id);
  }
  return index;
}

// The errors a person needs: the nullable-reference alternatives ("must be
// null", "must match exactly one schema in oneOf") repeat what the real
// error says.
function describe(errors) {
  return (errors || [])
    .filter((e) => e.keyword !== "oneOf" && !(e.keyword === "type" && e.params.type === "null"))
    .map((e) => {
      const where = e.instancePath || "/";
      if (e.keyword === "additionalProperties") {
        return `${where}: unknown field "${e.params.additionalProperty}"`;
      }
      return `${where}: ${e.message}`;
    });
}

function main() {
  let input;
  try {
    input = JSON.parse(fs.readFileSync(0, "utf8"));
    if (!Array.isArray(input)) throw new Error("expected a JSON array");
  } catch (error) {
    console.error(`validate.cjs: bad input: ${error.message}`);
    process.exit(2);
  }
  loadSchemas();
  const ajv = buildAjv();
  const index = kindIndex();
  const from = Object.keys(VERSIONS).map((p) => {
    const installed = p.startsWith("kubernetes-models")
      ? packageVersion("kubernetes-models")
      : packageVersion("@kubernetes-models/prometheus-operator");
    if (installed !== p) {
      console.error(`validate.cjs: expected ${p}, found ${installed}: update VERSIONS`);
      process.exit(2);
    }
    return `${VERSIONS[p]} (${p})`;
  });
  let failed = 0;
  for (const { source, object } of input) {
    const apiVersion = object && object.apiVersion;
    const kind = object && object.kind;
    const name = object && object.metadata && object.metadata.name;
    const id = index.get(`${apiVersion} ${kind}`);
    let errors;
    if (id === undefined) {
      errors = [`no schema for apiVersion ${apiVersion}, kind ${kind}`];
    } else {
      const validate = ajv.getSchema(id);
      errors = validate(object) ? [] : describe(validate.errors);
      if (errors.length === 0 && validate.errors) errors = ["invalid (no detail)"];
    }
    if (errors.length > 0) failed++;
    console.log(JSON.stringify({ source, kind, name, schema: id || null, errors }));
  }
  console.log(JSON.stringify({
    summary: `${input.length - failed} of ${input.length} objects valid`,
    schemas: from,
    count: schemas.size,
  }));
  process.exit(failed > 0 ? 1 : 0);
}

main();
