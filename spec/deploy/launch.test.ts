/**
 * The templates evaluated for given parameter values (spec/helpers/cfn.ts), as CloudFormation
 * would launch them: which statements the instance role gets, which rules refuse a launch, what
 * the user data tells the gateway, how far the group may grow; and docs/deploy.md checked
 * against the templates and the tests' policy fixtures.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BOOTSTRAP_FILE } from '../../deploy/cdk/app.js';
import { loadConfig } from '../../src/config.js';
import { Stack as CfnStack } from '../helpers/cfn.js';
import { type Json, both, existing, standalone, statements } from '../helpers/templates.js';
import { ROOT } from '../helpers/test-server.js';

const test = suite('deploy/launch');

/** Each template as CloudFormation would evaluate it for these parameter values. */
function launch(
  t: Template,
  parameters: Record<string, string>,
  subnetVpcs = ['vpc-0abc', 'vpc-0abc', 'vpc-0abc', 'vpc-0abc'],
  zones = { instances: ['us-east-1a', 'us-east-1b'], loadBalancer: ['us-east-1a', 'us-east-1b'] },
): CfnStack {
  const required: Record<string, string> = { PackageSource: 's3gw@0.1.0' };
  if ('VpcId' in (t.toJSON() as Json).Parameters) {
    Object.assign(required, { VpcId: 'vpc-0abc', InstanceSubnetIds: 'subnet-0a,subnet-0b', LoadBalancerSubnetIds: 'subnet-0c,subnet-0d' });
  }
  return new CfnStack(t.toJSON(), {
    parameters: { ...required, ...parameters },
    refs: { AuditLogGroup: 'test-stack-AuditLogGroup-AbC', HostKeySecret: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:HostKeySecret-AbC' },
    valuesOfAll: { 'AWS::EC2::Subnet::Id.VpcId': subnetVpcs },
    valuesOf: { 'InstanceSubnetIds.AvailabilityZone': zones.instances, 'LoadBalancerSubnetIds.AvailabilityZone': zones.loadBalancer },
  });
}

test('both: the role may read the package object only when PackageSource is s3://bucket/key, and then only that object', () => {
  for (const [name, t] of both) {
    const policies = (source: string) => launch(t, { PackageSource: source }).properties('InstanceRole').Policies as Json[];
    const s3 = policies('s3://my-bucket/releases/s3gw-0.1.0.tgz');
    assert.equal(s3.map((p) => p.PolicyName), ['audit-log', 'host-key', 'ssm-agent', 'package'], name);
    assert.equal(s3[3].PolicyDocument.Statement, [
      { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::my-bucket/releases/s3gw-0.1.0.tgz' },
    ]);
    for (const other of ['s3gw@0.1.0', 'https://example.com/s3://x/s3gw.tgz', 'S3://bucket/key']) {
      assert.equal(policies(other).map((p) => p.PolicyName), ['audit-log', 'host-key', 'ssm-agent'], `${name}: ${other}`);
    }
    // The other statements, resolved: one log group, one secret.
    const [log, key] = s3.map((p) => p.PolicyDocument.Statement[0]);
    assert.equal(log.Resource, [
      'arn:aws:logs:us-east-1:123456789012:log-group:test-stack-AuditLogGroup-AbC',
      'arn:aws:logs:us-east-1:123456789012:log-group:test-stack-AuditLogGroup-AbC:log-stream:*',
    ]);
    assert.is(key.Resource, 'arn:aws:secretsmanager:us-east-1:123456789012:secret:HostKeySecret-AbC');
    const given = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:s3gw/host-key-XyZ123';
    const withGiven = launch(t, { HostKeySecretArn: given });
    assert.not.ok(withGiven.exists('HostKeySecret'), 'no secret is made when one is given');
    assert.is((withGiven.properties('InstanceRole').Policies as Json[])[1].PolicyDocument.Statement[0].Resource, given);
  }
  // The bootstrap downloads exactly those sources from S3.
  assert.match(fs.readFileSync(BOOTSTRAP_FILE, 'utf8'), /\n {4}s3:\/\/\*\)\n/);
});

test('both: the rules refuse a KMS key without SSE-KMS and a launch no client could reach; bad values are refused', () => {
  const kms = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  for (const [, t] of both) {
    assert.equal(launch(t, {}).failingRules(), []);
    assert.equal(launch(t, { SseMode: 'aws:kms', KmsKeyArn: kms }).failingRules(), []);
    assert.equal(launch(t, { KmsKeyArn: kms }).failingRules(), ['KmsKeyNeedsKmsMode: KmsKeyArn is used only with SseMode aws:kms']);
    assert.equal(launch(t, { ClientCidr: '' }).failingRules(), ['SomeClientsAllowed: Set ClientCidr or ClientPrefixListId, or no client can connect']);
    assert.equal(launch(t, { ClientCidr: '', ClientPrefixListId: 'pl-0123abcd' }).failingRules(), []);
    assert.throws(() => launch(t, { InstanceType: 'm4.large' }), /does not match/);
    if (t === existing) {
      assert.equal(launch(t, {}, ['vpc-0abc', 'vpc-0abc', 'vpc-0def', 'vpc-0abc']).failingRules(), [
        'SubnetsInVpc: All subnets must be in the VPC given as VpcId',
      ]);
      const zones = (instances: string[], loadBalancer: string[]) => launch(t, {}, undefined, { instances, loadBalancer }).failingRules();
      assert.equal(zones(['us-east-1a', 'us-east-1c'], ['us-east-1a', 'us-east-1b']), [
        'SubnetsInVpc: LoadBalancerSubnetIds must cover every availability zone of InstanceSubnetIds',
      ]);
      assert.equal(zones(['us-east-1a', 'us-east-1a'], ['us-east-1b', 'us-east-1a', 'us-east-1c']), []);
    }
    assert.throws(() => launch(t, { InstanceCount: '1' }), /not an allowed value/);
    assert.throws(() => launch(t, { PackageSource: "s3gw@0.1.0'; reboot; '" }), /does not match/);
    const network: Record<string, string> = t === existing ? { VpcId: 'vpc-0abc', InstanceSubnetIds: 'subnet-0a', LoadBalancerSubnetIds: 'subnet-0c' } : {};
    assert.throws(() => new CfnStack(t.toJSON(), { parameters: network }), /PackageSource\] must have values/);
  }
});

test('both: what the gateway is told: SSE mode, KMS key, log group, secret, region, stack', () => {
  const kms = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  for (const [, t] of both) {
    const exports = (p: Record<string, string>) => {
      const ud = launch(t, p).properties('LaunchTemplate').LaunchTemplateData.UserData as string;
      return Object.fromEntries([...ud.matchAll(/^export (S3GW_[A-Z0-9_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
    };
    assert.equal(exports({}), {
      S3GW_PACKAGE: 's3gw@0.1.0',
      S3GW_PACKAGE_SHA256: '',
      S3GW_NODE_MAJOR: '22',
      S3GW_HOST_KEY_SECRET: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:HostKeySecret-AbC',
      S3GW_LOG_GROUP: 'test-stack-AuditLogGroup-AbC',
      S3GW_SSE: 'AES256',
      S3GW_REGION: 'us-east-1',
      S3GW_STACK: 'test-stack',
      S3GW_RESOURCE: 'AutoScalingGroup',
    });
    assert.is(exports({ SseMode: 'aws:kms' }).S3GW_SSE, 'aws:kms');
    assert.is(exports({ SseMode: 'aws:kms', KmsKeyArn: kms }).S3GW_SSE, `aws:kms:${kms}`);
    assert.is(exports({ SseMode: 'none' }).S3GW_SSE, 'none');
    // Each value is one the gateway accepts.
    for (const sse of ['AES256', 'aws:kms', `aws:kms:${kms}`, 'none']) loadConfig([], { S3GW_SSE: sse });
    // And every variable the bootstrap requires is exported, none other.
    const required = [...fs.readFileSync(BOOTSTRAP_FILE, 'utf8').matchAll(/"\$\{(S3GW_[A-Z0-9_]+):\?\}"/g)].map((m) => m[1]);
    assert.equal(Object.keys(exports({})).filter((k) => k !== 'S3GW_PACKAGE_SHA256').sort(), [...required].sort());
  }
});

test('both: the group may grow by one instance for a rolling update, whatever the count', () => {
  for (const [, t] of both) {
    for (const n of [2, 3, 10, 20]) {
      const asg = launch(t, { InstanceCount: String(n) }).properties('AutoScalingGroup');
      assert.equal([asg.MinSize, asg.DesiredCapacity, asg.MaxSize], [String(n), String(n), String(n + 1)]);
    }
  }
});

const DEPLOY_MD = fs.readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8');

test('docs/deploy.md: its user policies are the ones the tests give their MinIO users', () => {
  const blocks = [...DEPLOY_MD.matchAll(/<!-- policy: ([a-z]+\.json) -->\n```json\n([\s\S]*?)\n```/g)];
  assert.equal(blocks.map((b) => b[1]), ['least.json', 'onebucket.json']);
  for (const [, file, json] of blocks) {
    const fixture = JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 's3', 'policies', file!), 'utf8'));
    assert.equal(JSON.parse(json!), fixture, file);
  }
});

test('docs/deploy.md: its parameter table names every parameter of both templates, and no other', () => {
  const table = DEPLOY_MD.slice(DEPLOY_MD.indexOf('### Parameters'), DEPLOY_MD.indexOf('### What an instance does'));
  const documented = new Set(
    table
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([A-Za-z0-9]+)`/g)].map((m) => m[1]!)),
  );
  const inTemplates = new Set(both.flatMap(([, t]) => Object.keys((t.toJSON() as Json).Parameters)));
  assert.equal([...documented].sort(), [...inTemplates].sort());
});

test("docs/deploy.md: the instance role's table lists its policies", () => {
  const names = statements(standalone).map((x) => x.policy);
  for (const n of names) assert.match(DEPLOY_MD, `| \`${n}\` |`);
});

test.run();
