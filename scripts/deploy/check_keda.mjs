// Validates KEDA ScaledObjects (a JSON array in the file named by argv[2]) against KEDA's
// schema as the npm package @kubernetes-models/keda compiles it; check-deploy.sh installs the
// package and points NODE_PATH at its node_modules. Prints one line per invalid object and
// exits 1 if any. The package's schema checks types, required fields and enums; it does not
// reject unknown fields.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.NODE_PATH;
if (!modules) {
  console.error("check_keda: NODE_PATH must point at the node_modules holding @kubernetes-models/keda");
  process.exit(2);
}
const model = join(modules, "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js");
const { ScaledObject } = await import(pathToFileURL(model).href);

let failed = false;
for (const obj of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  try {
    new ScaledObject(obj).validate();
  } catch (e) {
    failed = true;
    console.log(`ScaledObject/${obj.metadata?.name}: not valid for KEDA: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
