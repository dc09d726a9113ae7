// Validates a Kubernetes manifest (YAML) as a batch/v1 Job against the Kubernetes OpenAPI schema
// (kubernetes-models' validator, offline); prints the Job as JSON on success, exits 1 with the
// schema errors otherwise. Usage: node validate.mjs JOB.yaml
import * as yaml from 'js-yaml';
import fs from 'fs';
import { Job } from 'kubernetes-models/batch/v1';

const doc = yaml.load(fs.readFileSync(process.argv[2], 'utf8'));
if (doc?.apiVersion !== 'batch/v1' || doc?.kind !== 'Job') {
  console.error(`not a batch/v1 Job: apiVersion ${doc?.apiVersion}, kind ${doc?.kind}`);
  process.exit(1);
}
try {
  new Job(doc).validate();
} catch (e) {
  console.error(`invalid Job: ${JSON.stringify(e.errors ?? e.message)}`);
  process.exit(1);
}
console.log(JSON.stringify(doc));
