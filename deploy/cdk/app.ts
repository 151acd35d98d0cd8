/**
 * The CDK app behind deploy/cloudformation/. `npm run synth` writes both templates;
 * spec/deploy/templates.test.ts fails when a checked-in template differs from what this app
 * synthesizes, so the JSON files and this code cannot drift apart.
 *
 * The templates are plain CloudFormation: no CDK bootstrap stack, no assets, no metadata
 * resource. Launch them from the console or `aws cloudformation deploy` (docs/deploy.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, type Stack } from 'aws-cdk-lib';
import type { GatewayOptions } from './gateway.js';
import { TEMPLATE_FILES, existingVpcStack, standaloneStack } from './stacks.js';

/** The repository's root, from dist/deploy/cdk/ where this module runs. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TEMPLATE_DIR = path.join(REPO_ROOT, 'deploy/cloudformation');
export const BOOTSTRAP_FILE = path.join(REPO_ROOT, 'deploy/bootstrap/s3gw-bootstrap.sh');

/** The file `npm pack` makes of this checkout: s3gw-<version>.tgz. */
export function packageTarball(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return `${pkg.name}-${pkg.version}.tgz`;
}

export interface Stacks {
  readonly app: App;
  readonly standalone: Stack;
  readonly existingVpc: Stack;
}

export function buildStacks(opts: GatewayOptions = { tarball: packageTarball(), bootstrapFile: BOOTSTRAP_FILE }): Stacks {
  // No path metadata: the templates carry only what CloudFormation reads.
  const app = new App({ context: { 'aws:cdk:enable-path-metadata': false } });
  return { app, standalone: standaloneStack(app, opts), existingVpc: existingVpcStack(app, opts) };
}

/** Both templates as the text written to deploy/cloudformation/, by file name. */
export function synthesize(stacks: Stacks = buildStacks()): Map<string, string> {
  const assembly = stacks.app.synth();
  const text = (stack: Stack) =>
    `${JSON.stringify(assembly.getStackByName(stack.stackName).template, null, 2)}\n`;
  return new Map([
    [TEMPLATE_FILES.standalone, text(stacks.standalone)],
    [TEMPLATE_FILES.existingVpc, text(stacks.existingVpc)],
  ]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.mkdirSync(TEMPLATE_DIR, { recursive: true });
  for (const [file, text] of synthesize()) {
    fs.writeFileSync(path.join(TEMPLATE_DIR, file), text);
    console.log(`wrote deploy/cloudformation/${file} (${text.length} bytes)`);
  }
}
