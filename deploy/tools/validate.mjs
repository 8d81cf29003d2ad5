// Validates rendered Kubernetes manifests offline and prints them as JSON.
//
//   kubectl kustomize deploy/k8s/overlays/cpu | node deploy/tools/validate.mjs
//   node deploy/tools/validate.mjs rendered.yaml
//
// Reads a multi-document YAML stream, checks EVERY object against the Kubernetes OpenAPI schemas bundled in npm
// kubernetes-models (the model class is looked up from apiVersion + kind; an unknown kind is an error, so nothing
// passes unchecked), and prints one JSON document on stdout:
//   { "valid": bool, "errors": [{ "kind", "name", "message" }], "objects": [ ...the objects as JSON... ] }
// Exit code 0 when every object is valid, 1 when any is not, 2 on unreadable input.
// Note: the schemas do not reject unknown fields (a misspelt key passes); the C# tests check the fields they rely on.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const input = process.argv[2] ? readFileSync(process.argv[2], "utf8") : readFileSync(0, "utf8");

const errors = [];
const objects = [];
for (const doc of parseAllDocuments(input)) {
  if (doc.errors.length > 0) {
    console.error(`YAML error: ${doc.errors.map((e) => e.message).join("; ")}`);
    process.exit(2);
  }
  const obj = doc.toJS();
  if (obj === null || obj === undefined) continue;
  objects.push(obj);
}

// "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1 (the core group). Custom resources come from
// the @kubernetes-models package of their operator, generated from its CRDs (PodMonitor: components/monitoring;
// Issuer and Certificate: components/tls).
const crdPackages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "cert-manager.io": "@kubernetes-models/cert-manager",
};
const modules = new Map();
async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) return undefined;
  if (!modules.has(apiVersion)) {
    const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
    const pkg = crdPackages[group] ?? "kubernetes-models";
    try {
      modules.set(apiVersion, await import(`${pkg}/${apiVersion}`));
    } catch {
      modules.set(apiVersion, undefined);
    }
  }
  return modules.get(apiVersion)?.[kind];
}

for (const obj of objects) {
  const kind = obj?.kind ?? "?";
  const name = obj?.metadata?.name ?? "?";
  const Model = await modelClass(obj?.apiVersion, kind);
  if (Model === undefined) {
    errors.push({ kind, name, message: `no Kubernetes schema for apiVersion "${obj?.apiVersion}" kind "${kind}"` });
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    errors.push({ kind, name, message: String(e?.message ?? e) });
  }
}

process.stdout.write(JSON.stringify({ valid: errors.length === 0, errors, objects }));
process.exit(errors.length === 0 ? 0 : 1);
