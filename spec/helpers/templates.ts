/**
 * The two CloudFormation templates as the CDK app synthesizes them, with accessors the deploy
 * tests share (spec/deploy/templates.test.ts, spec/deploy/launch.test.ts).
 */
import { Template } from 'aws-cdk-lib/assertions';
import * as assert from 'uvu/assert';
import { buildStacks } from '../../deploy/cdk/app.js';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const stacks = buildStacks();
export const standalone = Template.fromStack(stacks.standalone);
export const existing = Template.fromStack(stacks.existingVpc);
export const both: [string, Template][] = [
  ['standalone', standalone],
  ['existing VPC', existing],
];

export function resource(t: Template, id: string): Json {
  const r = (t.toJSON() as Json).Resources[id];
  assert.ok(r, `resource ${id}`);
  return r;
}

export function parameter(t: Template, id: string): Json {
  const p = (t.toJSON() as Json).Parameters[id];
  assert.ok(p, `parameter ${id}`);
  return p;
}

/** Every statement of the instance role's policies, with Fn::If branches taken as written. */
export function statements(t: Template): { policy: string; conditional: boolean; s: Json }[] {
  const role = resource(t, 'InstanceRole').Properties;
  assert.not.ok(role.ManagedPolicyArns, 'no managed policy: every permission is spelled out here');
  const out: { policy: string; conditional: boolean; s: Json }[] = [];
  for (const p of role.Policies as Json[]) {
    const conditional = 'Fn::If' in p;
    const policy = conditional ? p['Fn::If'][1] : p;
    if (conditional) assert.equal(p['Fn::If'][2], { Ref: 'AWS::NoValue' });
    for (const s of policy.PolicyDocument.Statement) out.push({ policy: policy.PolicyName, conditional, s });
  }
  return out;
}
