/**
 * deploy/cloudformation: the two templates are what the CDK app (deploy/cdk) synthesizes today,
 * cfn-lint finds nothing in them, and CDK assertions check every property issue 7 asks of them:
 * the network of each, the load balancer and its health check, the Auto Scaling group and its
 * rolling updates, the instance role's exact permissions, the shared host key, the audit log
 * group, Systems Manager instead of an SSH port, the parameters with their defaults and bounds,
 * and the outputs.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BOOTSTRAP_FILE, TEMPLATE_DIR, packageTarball, synthesize } from '../../deploy/cdk/app.js';
import { CLIENT_PORT, DEREGISTRATION_DELAY, GATEWAY_PORT, HEALTH_PORT, SSM_AGENT_ACTIONS } from '../../deploy/cdk/gateway.js';
import { MAX_INSTANCES, MIN_INSTANCES, RETENTION_DAYS } from '../../deploy/cdk/parameters.js';
import { TEMPLATE_FILES } from '../../deploy/cdk/stacks.js';
import { loadConfig } from '../../src/config.js';
import { type Json, both, existing, parameter, resource, standalone, statements } from '../helpers/templates.js';
import { parseEnvFile } from '../helpers/s3-env.js';
import { ROOT } from '../helpers/test-server.js';

const test = suite('deploy/templates');

/** The deployed gateway's settings (deploy/systemd/s3gw.env), as the gateway reads them. */
function envFileSettings(): Record<string, string> {
  return Object.fromEntries(parseEnvFile(fs.readFileSync(path.join(ROOT, 'deploy', 'systemd', 's3gw.env'), 'utf8')));
}

test('the checked-in templates are what the CDK app synthesizes (else: npm run synth)', () => {
  const files = synthesize();
  assert.equal([...files.keys()].sort(), fs.readdirSync(TEMPLATE_DIR).sort());
  for (const [file, text] of files) {
    const onDisk = fs.readFileSync(path.join(TEMPLATE_DIR, file), 'utf8');
    assert.ok(onDisk === text, `deploy/cloudformation/${file} is stale: run 'npm run synth' and commit the result`);
  }
});

test('cfn-lint finds nothing in either template, and of its informational checks only the Fn::Join style hint', () => {
  const files = Object.values(TEMPLATE_FILES).map((f) => path.join(TEMPLATE_DIR, f));
  const r = spawnSync('cfn-lint', ['--format', 'parseable', ...files], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.error, undefined, "cfn-lint is missing: run 'python3 -m pip install cfn-lint==1.51.0' (scripts/setup-test-deps.sh does)");
  assert.is(r.stdout + r.stderr, '');
  assert.is(r.status, 0);
  // I1022 (prefer Fn::Sub to Fn::Join): the user data joins a bash script, whose own ${...}
  // Fn::Sub would take for its variables.
  const info = spawnSync('cfn-lint', ['--format', 'parseable', '--include-checks', 'I', '--', ...files], { encoding: 'utf8', timeout: 300_000 });
  const rules = new Set(info.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(':')[5]));
  assert.equal([...rules], ['I1022'], info.stdout);
});

test('the templates are plain CloudFormation: no CDK bootstrap, assets, metadata resource or path metadata', () => {
  for (const [name, t] of both) {
    const j = t.toJSON() as Json;
    assert.not.ok(j.Parameters.BootstrapVersion, name);
    assert.not.ok(j.Rules?.CheckBootstrapVersion, name);
    assert.is(Object.keys(j.Resources).filter((id) => j.Resources[id].Type === 'AWS::CDK::Metadata').length, 0, name);
    assert.not.match(JSON.stringify(j), /aws:cdk:path|aws:asset|cdk-hnb659fds/, name);
    // Descriptions must stay within what CloudFormation accepts everywhere (Latin-1).
    assert.not.match(JSON.stringify(j), /[^\u0009\u000a\u000d\u0020-\u007e\u00a1-\u00ff]/, name);
  }
});

test('standalone: a new VPC with two public subnets in two availability zones and an internet gateway', () => {
  standalone.resourceCountIs('AWS::EC2::VPC', 1);
  standalone.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: { Ref: 'VpcCidr' }, EnableDnsHostnames: true, EnableDnsSupport: true });
  standalone.resourceCountIs('AWS::EC2::Subnet', 2);
  for (const [i, id] of ['PublicSubnet1', 'PublicSubnet2'].entries()) {
    const subnet = resource(standalone, id);
    assert.equal(subnet.Properties.AvailabilityZone, { 'Fn::Select': [i, { 'Fn::GetAZs': '' }] }, `${id}: zone ${i}`);
    assert.equal(subnet.Properties.CidrBlock, { Ref: `${id}Cidr` });
    assert.equal(subnet.Properties.VpcId, { Ref: 'Vpc' });
    standalone.hasResourceProperties('AWS::EC2::SubnetRouteTableAssociation', {
      SubnetId: { Ref: id },
      RouteTableId: { Ref: 'PublicRouteTable' },
    });
  }
  standalone.resourceCountIs('AWS::EC2::InternetGateway', 1);
  standalone.hasResourceProperties('AWS::EC2::VPCGatewayAttachment', { VpcId: { Ref: 'Vpc' }, InternetGatewayId: { Ref: 'InternetGateway' } });
  standalone.hasResource('AWS::EC2::Route', {
    Properties: { RouteTableId: { Ref: 'PublicRouteTable' }, DestinationCidrBlock: '0.0.0.0/0', GatewayId: { Ref: 'InternetGateway' } },
    DependsOn: ['InternetGatewayAttachment'],
  });
  // The load balancer and the instances wait for the way out (which waits for the attachment).
  assert.equal(resource(standalone, 'AutoScalingGroup').DependsOn, ['PublicDefaultRoute']);
  assert.equal(resource(standalone, 'LoadBalancer').DependsOn, ['PublicDefaultRoute']);
  // Nothing but the gateway's own parts: no NAT gateway to pay for.
  standalone.resourceCountIs('AWS::EC2::NatGateway', 0);
});

test('standalone: an internet-facing NLB in both subnets, instances in both, with public addresses', () => {
  const lb = resource(standalone, 'LoadBalancer').Properties;
  assert.is(lb.Type, 'network');
  assert.is(lb.Scheme, 'internet-facing');
  assert.equal(lb.Subnets, [{ Ref: 'PublicSubnet1' }, { Ref: 'PublicSubnet2' }]);
  assert.equal(resource(standalone, 'AutoScalingGroup').Properties.VPCZoneIdentifier, [{ Ref: 'PublicSubnet1' }, { Ref: 'PublicSubnet2' }]);
  const nic = resource(standalone, 'LaunchTemplate').Properties.LaunchTemplateData.NetworkInterfaces[0];
  assert.is(nic.AssociatePublicIpAddress, true);
});

test('existing VPC: parameters for the VPC, the subnets, the scheme and public addresses, with a rule keeping the subnets in the VPC', () => {
  assert.is(parameter(existing, 'VpcId').Type, 'AWS::EC2::VPC::Id');
  assert.is(parameter(existing, 'InstanceSubnetIds').Type, 'List<AWS::EC2::Subnet::Id>');
  assert.is(parameter(existing, 'LoadBalancerSubnetIds').Type, 'List<AWS::EC2::Subnet::Id>');
  assert.equal(parameter(existing, 'LoadBalancerScheme').AllowedValues, ['internet-facing', 'internal']);
  assert.equal(parameter(existing, 'AssignPublicIp').AllowedValues, ['true', 'false']);
  assert.is(parameter(existing, 'AssignPublicIp').Default, 'false');
  const lb = resource(existing, 'LoadBalancer').Properties;
  assert.equal(lb.Scheme, { Ref: 'LoadBalancerScheme' });
  assert.equal(lb.Subnets, { Ref: 'LoadBalancerSubnetIds' });
  assert.equal(resource(existing, 'AutoScalingGroup').Properties.VPCZoneIdentifier, { Ref: 'InstanceSubnetIds' });
  assert.equal(resource(existing, 'TargetGroup').Properties.VpcId, { Ref: 'VpcId' });
  const nic = resource(existing, 'LaunchTemplate').Properties.LaunchTemplateData.NetworkInterfaces[0];
  assert.equal(nic.AssociatePublicIpAddress, { Ref: 'AssignPublicIp' });
  existing.resourceCountIs('AWS::EC2::VPC', 0);
  existing.resourceCountIs('AWS::EC2::Subnet', 0);
  const rule = (existing.toJSON() as Json).Rules.SubnetsInVpc;
  assert.equal(rule.Assertions[0].Assert, {
    'Fn::EachMemberEquals': [{ 'Fn::ValueOfAll': ['AWS::EC2::Subnet::Id', 'VpcId'] }, { Ref: 'VpcId' }],
  });
  assert.equal(rule.Assertions[1].Assert, {
    'Fn::EachMemberIn': [
      { 'Fn::ValueOf': ['InstanceSubnetIds', 'AvailabilityZone'] },
      { 'Fn::ValueOf': ['LoadBalancerSubnetIds', 'AvailabilityZone'] },
    ],
  });
});

test('both: the listener takes TCP 22 to the gateway on 2222, health-checked over HTTP on /health', () => {
  for (const [, t] of both) {
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Protocol: 'TCP',
      Port: CLIENT_PORT,
      LoadBalancerArn: { Ref: 'LoadBalancer' },
      DefaultActions: [{ Type: 'forward', TargetGroupArn: { Ref: 'TargetGroup' } }],
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Protocol: 'TCP',
      Port: GATEWAY_PORT,
      TargetType: 'instance',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: String(HEALTH_PORT),
      HealthCheckPath: '/health',
      Matcher: { HttpCode: '200' },
      TargetGroupAttributes: Match.arrayWith([
        { Key: 'deregistration_delay.timeout_seconds', Value: String(DEREGISTRATION_DELAY) },
        { Key: 'preserve_client_ip.enabled', Value: 'true' },
      ]),
    });
    assert.equal(resource(t, 'LoadBalancer').Properties.LoadBalancerAttributes, [{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }]);
  }
  // The ports are the ones the gateway on an instance listens on.
  const env = envFileSettings();
  assert.is(env.S3GW_LISTEN, `0.0.0.0:${GATEWAY_PORT}`);
  assert.is(env.S3GW_HEALTH_LISTEN, `0.0.0.0:${HEALTH_PORT}`);
  const bootstrap = fs.readFileSync(BOOTSTRAP_FILE, 'utf8');
  assert.match(bootstrap, `HEALTH_PORT=\${S3GW_HEALTH_PORT:-${HEALTH_PORT}}`);
  // Deregistration, then the drain: the unit gives the drain its time.
  const drain = loadConfig([], env).config.drainTimeoutMs / 1000;
  assert.ok(drain <= DEREGISTRATION_DELAY, `drain ${drain}s`);
});

test('both: clients reach only the load balancer; only the load balancer reaches the instances; no SSH port for administration unless asked', () => {
  for (const [name, t] of both) {
    const lbSg = resource(t, 'LoadBalancerSecurityGroup');
    assert.equal(resource(t, 'LoadBalancer').Properties.SecurityGroups, [{ 'Fn::GetAtt': ['LoadBalancerSecurityGroup', 'GroupId'] }]);
    assert.not.ok(lbSg.Properties.SecurityGroupIngress, `${name}: client rules are separate, conditional resources`);
    const cidr = resource(t, 'ClientCidrIngress');
    assert.is(cidr.Condition, 'HasClientCidr');
    assert.equal(cidr.Properties, {
      GroupId: { 'Fn::GetAtt': ['LoadBalancerSecurityGroup', 'GroupId'] },
      Description: 'SFTP/SCP clients',
      IpProtocol: 'tcp',
      FromPort: CLIENT_PORT,
      ToPort: CLIENT_PORT,
      CidrIp: { Ref: 'ClientCidr' },
    });
    const list = resource(t, 'ClientPrefixListIngress');
    assert.is(list.Condition, 'HasClientPrefixList');
    assert.equal(list.Properties.SourcePrefixListId, { Ref: 'ClientPrefixListId' });

    const sg = resource(t, 'InstanceSecurityGroup').Properties;
    const fromLb = { 'Fn::GetAtt': ['LoadBalancerSecurityGroup', 'GroupId'] };
    assert.equal(
      sg.SecurityGroupIngress.map((r: Json) => [r.IpProtocol, r.FromPort, r.ToPort, r.SourceSecurityGroupId]),
      [
        ['tcp', GATEWAY_PORT, GATEWAY_PORT, fromLb],
        ['tcp', HEALTH_PORT, HEALTH_PORT, fromLb],
      ],
    );
    assert.equal(sg.SecurityGroupEgress.map((r: Json) => [r.IpProtocol, r.FromPort, r.ToPort, r.CidrIp]), [['tcp', 443, 443, '0.0.0.0/0']]);
    // Port 22 of the instances themselves only through AdminSshCidr, off by default.
    const admin = resource(t, 'AdminSshIngress');
    assert.is(admin.Condition, 'HasAdminSshCidr');
    assert.equal([admin.Properties.FromPort, admin.Properties.ToPort, admin.Properties.CidrIp], [22, 22, { Ref: 'AdminSshCidr' }]);
    assert.is(parameter(t, 'AdminSshCidr').Default, '');
    const conditions = (t.toJSON() as Json).Conditions;
    assert.equal(conditions.HasAdminSshCidr, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AdminSshCidr' }, ''] }] });
    const ingress = Object.values((t.toJSON() as Json).Resources as Record<string, Json>).filter(
      (r) => r.Type === 'AWS::EC2::SecurityGroupIngress',
    );
    assert.is(ingress.length, 3, `${name}: clients by CIDR, clients by prefix list, administrators`);
    // The EC2 key pair too is optional.
    const lt = resource(t, 'LaunchTemplate').Properties.LaunchTemplateData;
    assert.equal(lt.KeyName, { 'Fn::If': ['HasKeyName', { Ref: 'KeyName' }, { Ref: 'AWS::NoValue' }] });
  }
});

test('both: the instance role may write the audit log, read the host key, read its package from S3, and run the SSM agent; nothing else', () => {
  for (const [name, t] of both) {
    const role = resource(t, 'InstanceRole').Properties;
    assert.equal(role.AssumeRolePolicyDocument.Statement, [
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
    const all = statements(t);
    for (const { s } of all) assert.is(s.Effect, 'Allow');
    assert.equal(all.map((x) => x.policy), ['audit-log', 'host-key', 'ssm-agent', 'package'], name);
    const [log, key, ssm, pkg] = all.map((x) => x.s);

    assert.equal(log!.Action, ['logs:CreateLogStream', 'logs:PutLogEvents']);
    assert.equal(log!.Resource, [
      { 'Fn::Sub': 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}:log-stream:*' },
    ]);

    assert.is(key!.Action, 'secretsmanager:GetSecretValue');
    assert.equal(key!.Resource, { 'Fn::If': ['CreateHostKeySecret', { Ref: 'HostKeySecret' }, { Ref: 'HostKeySecretArn' }] });

    // The agent's calls are on '*' as in the AWS managed policy, but no parameter reads.
    assert.equal(ssm!.Action, SSM_AGENT_ACTIONS);
    assert.is(ssm!.Resource, '*');
    assert.ok(SSM_AGENT_ACTIONS.every((a) => /^(ssm|ssmmessages|ec2messages):[A-Z][A-Za-z]+$/.test(a)));
    assert.not.ok(SSM_AGENT_ACTIONS.some((a) => /GetParameter|SendCommand|StartSession|\*/.test(a)));
    for (const needed of ['ssm:UpdateInstanceInformation', 'ssmmessages:OpenDataChannel', 'ec2messages:GetMessages', 'ssm:GetDeployablePatchSnapshotForInstance']) {
      assert.ok(SSM_AGENT_ACTIONS.includes(needed), needed);
    }

    // The package object, only when PackageSource is s3://bucket/key.
    assert.ok(all[3]!.conditional);
    assert.is(pkg!.Action, 's3:GetObject');
    assert.match(JSON.stringify(pkg!.Resource), '"Fn::Select":[1,{"Fn::Split":["s3://"');
    // No statement anywhere grants S3 data access beyond that one object, or any wildcard action.
    for (const { s } of all) {
      for (const a of [s.Action].flat()) assert.not.ok(String(a).includes('*'), `${name}: ${a}`);
    }
  }
});

test('both: one host key for every instance, from a secret the stack generates or one given', () => {
  for (const [, t] of both) {
    const secret = resource(t, 'HostKeySecret');
    assert.is(secret.Type, 'AWS::SecretsManager::Secret');
    assert.is(secret.Condition, 'CreateHostKeySecret');
    assert.is(secret.DeletionPolicy, 'Retain');
    assert.is(secret.UpdateReplacePolicy, 'Retain');
    assert.equal(secret.Properties.GenerateSecretString, { PasswordLength: 64, ExcludePunctuation: true, IncludeSpace: false });
    assert.equal((t.toJSON() as Json).Conditions.CreateHostKeySecret, { 'Fn::Equals': [{ Ref: 'HostKeySecretArn' }, ''] });
    assert.is(parameter(t, 'HostKeySecretArn').Default, '');
    const arn = new RegExp(parameter(t, 'HostKeySecretArn').AllowedPattern);
    assert.ok(arn.test('arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3gw/host-key-AbCdEf'));
    assert.not.ok(arn.test("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x'; reboot"));
    // IAM matches the full ARN: a name without the 6-character suffix would be denied at boot.
    assert.not.ok(arn.test('arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3gw/host-key'));
  }
});

test('both: an audit log group with a retention parameter, kept when the stack goes, and the gateway sends to it', () => {
  for (const [, t] of both) {
    t.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: { Ref: 'AuditLogRetentionDays' } },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const p = parameter(t, 'AuditLogRetentionDays');
    assert.is(p.Type, 'Number');
    assert.equal(p.AllowedValues, RETENTION_DAYS.map(String));
    assert.is(p.Default, '365');
    assert.match(userData(t), "export S3GW_LOG_GROUP='<AuditLogGroup>'\n");
  }
});

/** The user data with every reference shown as <Name>: the script the instance runs. */
function userData(t: Template): string {
  const render = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Json;
    if (o.Ref) return `<${o.Ref}>`;
    if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(render).join(o['Fn::Join'][0]);
    if (o['Fn::If']) return `<if ${o['Fn::If'][0]}: ${render(o['Fn::If'][1])} else ${render(o['Fn::If'][2])}>`;
    throw new Error(`unexpected in user data: ${JSON.stringify(o)}`);
  };
  return render(resource(t, 'LaunchTemplate').Properties.LaunchTemplateData.UserData['Fn::Base64']);
}

/** The user data's size in bytes with every reference at its longest. */
function worstCaseUserData(t: Template): number {
  const params = (t.toJSON() as Json).Parameters as Record<string, Json>;
  // Pseudo parameters and resource names, at CloudFormation's limits.
  const fixed: Record<string, number> = { 'AWS::StackName': 128, 'AWS::Region': 32, AuditLogGroup: 512, HostKeySecret: 2048 };
  const longest = (name: string): number => {
    if (name in fixed) return fixed[name]!;
    const p = params[name];
    assert.ok(p, `reference to ${name}`);
    if (p.AllowedValues) return Math.max(...(p.AllowedValues as string[]).map((v) => v.length));
    const m = /\{(\d+)\}\)\?\$$/.exec(p.AllowedPattern ?? '');
    if (m) return Number(m[1]);
    assert.ok(typeof p.MaxLength === 'number', `${name} has a MaxLength`);
    return p.MaxLength;
  };
  const size = (v: unknown): number => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    const o = v as Json;
    if (o.Ref) return longest(o.Ref);
    if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).reduce<number>((n, x) => n + size(x), 0);
    if (o['Fn::If']) return Math.max(size(o['Fn::If'][1]), size(o['Fn::If'][2]));
    throw new Error(`unexpected in user data: ${JSON.stringify(o)}`);
  };
  return size(resource(t, 'LaunchTemplate').Properties.LaunchTemplateData.UserData['Fn::Base64']);
}

test('both: the user data is the bootstrap, after the parameters it reads, and fits in 16 KB', () => {
  const body = fs.readFileSync(BOOTSTRAP_FILE, 'utf8');
  for (const [, t] of both) {
    const ud = userData(t);
    assert.ok(ud.startsWith('#!/bin/bash\n'));
    assert.ok(ud.endsWith(body.slice(body.indexOf('\n') + 1)), 'the script follows, unchanged');
    for (const line of [
      "export S3GW_PACKAGE='<PackageSource>'",
      "export S3GW_PACKAGE_SHA256='<PackageSha256>'",
      "export S3GW_NODE_MAJOR='<NodeMajorVersion>'",
      "export S3GW_HOST_KEY_SECRET='<if CreateHostKeySecret: <HostKeySecret> else <HostKeySecretArn>>'",
      "export S3GW_SSE='<if HasKmsKey: aws:kms:<KmsKeyArn> else <SseMode>>'",
      "export S3GW_REGION='<AWS::Region>'",
      "export S3GW_STACK='<AWS::StackName>'",
      "export S3GW_RESOURCE='AutoScalingGroup'",
    ]) {
      assert.ok(ud.includes(`\n${line}\n`), line);
    }
    // EC2 takes at most 16 KB of user data: with every value as long as it may be.
    assert.ok(worstCaseUserData(t) <= 16 * 1024, `user data can reach ${worstCaseUserData(t)} bytes`);
  }
});

test('both: values that reach the shell are constrained to characters that need no quoting', () => {
  for (const [, t] of both) {
    for (const id of ['PackageSource', 'PackageSha256', 'KmsKeyArn', 'HostKeySecretArn', 'ClientCidr', 'AdminSshCidr']) {
      const re = new RegExp(parameter(t, id).AllowedPattern);
      for (const evil of ["a'b", 'a b', 'a$(reboot)', 'a`id`', 'a\nb', 'a;b', 'a\\b', 'a"b']) {
        assert.not.ok(re.test(evil), `${id} refuses ${JSON.stringify(evil)}`);
      }
    }
    const pkg = new RegExp(parameter(t, 'PackageSource').AllowedPattern);
    for (const good of ['s3gw@0.1.0', 'https://github.com/o/r/releases/download/v0.1.0/s3gw-0.1.0.tgz', 's3://bucket/path/s3gw-0.1.0.tgz', 'https://b.s3.amazonaws.com/s3gw.tgz?X-Amz-Signature=ab%2Fc&X-Amz-Date=20261128T000000Z']) {
      assert.ok(pkg.test(good), good);
    }
    assert.not.ok(pkg.test(''), 'a package must be given');
    // No default: s3gw is not on npm, and an unclaimed name could be taken by anyone.
    assert.not.ok('Default' in parameter(t, 'PackageSource'));
    assert.match(parameter(t, 'PackageSource').Description, packageTarball());
  }
});

test('both: an Auto Scaling group of at least two, replaced on failed health checks, created only when every instance signals', () => {
  for (const [, t] of both) {
    const count = parameter(t, 'InstanceCount');
    assert.is(count.Default, String(MIN_INSTANCES));
    assert.is(MIN_INSTANCES, 2);
    assert.equal(count.AllowedValues, Array.from({ length: MAX_INSTANCES - MIN_INSTANCES + 1 }, (_, i) => String(i + MIN_INSTANCES)));
    const asg = resource(t, 'AutoScalingGroup');
    assert.equal(asg.Properties.MinSize, { Ref: 'InstanceCount' });
    assert.equal(asg.Properties.DesiredCapacity, { Ref: 'InstanceCount' });
    assert.equal(asg.Properties.MaxSize, { 'Fn::FindInMap': ['Capacity', { Ref: 'InstanceCount' }, 'MaxSize'] });
    const capacity = (t.toJSON() as Json).Mappings.Capacity;
    for (const n of count.AllowedValues as string[]) assert.is(capacity[n].MaxSize, String(Number(n) + 1), `MaxSize for ${n}`);
    assert.is(asg.Properties.HealthCheckType, 'ELB');
    assert.equal(asg.Properties.TargetGroupARNs, [{ Ref: 'TargetGroup' }]);
    assert.equal(asg.Properties.LaunchTemplate, {
      LaunchTemplateId: { Ref: 'LaunchTemplate' },
      Version: { 'Fn::GetAtt': ['LaunchTemplate', 'LatestVersionNumber'] },
    });
    assert.equal(asg.CreationPolicy, {
      AutoScalingCreationPolicy: { MinSuccessfulInstancesPercent: 100 },
      ResourceSignal: { Count: { Ref: 'InstanceCount' }, Timeout: 'PT15M' },
    });
    // The signal names this resource, and is sent only after /health answers and the load
    // balancer has had time to see it healthy: so an old instance is retired only then.
    assert.match(userData(t), "export S3GW_RESOURCE='AutoScalingGroup'");
    const bootstrap = fs.readFileSync(BOOTSTRAP_FILE, 'utf8');
    assert.ok(bootstrap.indexOf('wait_healthy ||') < bootstrap.indexOf('sleep "$SIGNAL_DELAY"'));
    assert.ok(bootstrap.indexOf('sleep "$SIGNAL_DELAY"') < bootstrap.lastIndexOf('signal 0'));
    const delay = Number(/SIGNAL_DELAY=\$\{S3GW_SIGNAL_DELAY:-(\d+)\}/.exec(bootstrap)?.[1]);
    const tg = resource(t, 'TargetGroup').Properties;
    const needed = tg.HealthyThresholdCount * tg.HealthCheckIntervalSeconds + tg.HealthCheckTimeoutSeconds;
    assert.ok(delay >= needed, `signal delay ${delay}s < ${needed}s`);
  }
});

test('both: rolling updates one instance at a time, with InstanceCount kept in service', () => {
  for (const [, t] of both) {
    const update = resource(t, 'AutoScalingGroup').UpdatePolicy.AutoScalingRollingUpdate;
    assert.is(update.MaxBatchSize, 1);
    assert.equal(update.MinInstancesInService, { Ref: 'InstanceCount' });
    assert.is(update.MinSuccessfulInstancesPercent, 100);
    assert.is(update.WaitOnResourceSignals, true);
    assert.is(update.PauseTime, 'PT15M');
    for (const p of ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance', 'AlarmNotification', 'ScheduledActions']) {
      assert.ok(update.SuspendProcesses.includes(p), p);
    }
  }
});

test('both: instances take IMDSv2 only, an encrypted root volume, the instance profile, and the gateway security group', () => {
  for (const [, t] of both) {
    const lt = resource(t, 'LaunchTemplate').Properties.LaunchTemplateData;
    assert.equal(lt.MetadataOptions, { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' });
    assert.is(lt.BlockDeviceMappings[0].Ebs.Encrypted, true);
    assert.equal(lt.IamInstanceProfile, { Arn: { 'Fn::GetAtt': ['InstanceProfile', 'Arn'] } });
    assert.equal(lt.NetworkInterfaces[0].Groups, [{ 'Fn::GetAtt': ['InstanceSecurityGroup', 'GroupId'] }]);
    assert.equal(lt.ImageId, { Ref: 'ImageId' });
    assert.equal(lt.InstanceType, { Ref: 'InstanceType' });
    t.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: 'InstanceRole' }] });
  }
});

test('both: instance type m5.large or newer, Amazon Linux 2023, Node.js from its repositories', () => {
  for (const [, t] of both) {
    const type = parameter(t, 'InstanceType');
    assert.is(type.Default, 'm5.large');
    const re = new RegExp(type.AllowedPattern);
    for (const ok of ['m5.large', 'm5.xlarge', 'm6i.2xlarge', 'm7i.large', 'c7i.4xlarge', 'm7g.large', 'r6i.large']) assert.ok(re.test(ok), ok);
    for (const no of ['m4.large', 't3.micro', 't2.medium', 'm5.medium', 'c4.large', 'x1.16xlarge', 'm5.large;']) assert.not.ok(re.test(no), no);
    const image = parameter(t, 'ImageId');
    assert.is(image.Type, 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>');
    assert.is(image.Default, '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
    assert.equal(parameter(t, 'NodeMajorVersion').AllowedValues, ['20', '22', '24']);
  }
});

test("both: clients' CIDR, SSE mode and KMS key as parameters with the seed's defaults and rules", () => {
  for (const [, t] of both) {
    const cidr = parameter(t, 'ClientCidr');
    assert.is(cidr.Default, '0.0.0.0/0');
    const re = new RegExp(cidr.AllowedPattern);
    for (const ok of ['0.0.0.0/0', '203.0.113.0/24', '198.51.100.7/32', '']) assert.ok(re.test(ok), ok);
    for (const no of ['203.0.113.0', '203.0.113.0/33', 'any', '::/0']) assert.not.ok(re.test(no), no);
    const sse = parameter(t, 'SseMode');
    assert.is(sse.Default, 'AES256');
    assert.equal(sse.AllowedValues, ['AES256', 'aws:kms', 'none']);
    const kms = new RegExp(parameter(t, 'KmsKeyArn').AllowedPattern);
    assert.ok(kms.test('arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'));
    assert.ok(kms.test('arn:aws:kms:eu-west-1:123456789012:alias/s3gw'));
    assert.ok(kms.test(''));
    assert.not.ok(kms.test('1234abcd-12ab-34cd-56ef-1234567890ab'), 'a full ARN, so the policy examples match');
    const rules = (t.toJSON() as Json).Rules;
    assert.equal(rules.KmsKeyNeedsKmsMode.RuleCondition, { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'KmsKeyArn' }, ''] }] });
    assert.equal(rules.KmsKeyNeedsKmsMode.Assertions[0].Assert, { 'Fn::Equals': [{ Ref: 'SseMode' }, 'aws:kms'] });
    assert.equal(rules.SomeClientsAllowed.Assertions[0].Assert, {
      'Fn::Or': [
        { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ClientCidr' }, ''] }] },
        { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ClientPrefixListId' }, ''] }] },
      ],
    });
  }
  // What the gateway makes of each S3GW_SSE value the user data can carry.
  for (const [value, ok] of [
    ['AES256', true],
    ['aws:kms', true],
    ['none', true],
    ['aws:kms:arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', true],
  ] as const) {
    let parsed = true;
    try {
      loadConfig([], { S3GW_SSE: value });
    } catch {
      parsed = false;
    }
    assert.is(parsed, ok, `S3GW_SSE=${value}`);
  }
});

test('both: outputs name the load balancer, the audit log group, the host key secret, the group and the role', () => {
  for (const [, t] of both) {
    t.hasOutput('LoadBalancerDnsName', { Value: { 'Fn::GetAtt': ['LoadBalancer', 'DNSName'] } });
    t.hasOutput('AuditLogGroupName', { Value: { Ref: 'AuditLogGroup' } });
    t.hasOutput('SharedHostKeySecret', {
      Value: { 'Fn::If': ['CreateHostKeySecret', { Ref: 'HostKeySecret' }, { Ref: 'HostKeySecretArn' }] },
    });
    t.hasOutput('AutoScalingGroupName', { Value: { Ref: 'AutoScalingGroup' } });
    t.hasOutput('InstanceRoleArn', { Value: { 'Fn::GetAtt': ['InstanceRole', 'Arn'] } });
  }
});

test('both: every parameter is in a console group, and every parameter has a description', () => {
  for (const [name, t] of both) {
    const j = t.toJSON() as Json;
    const grouped = (j.Metadata['AWS::CloudFormation::Interface'].ParameterGroups as Json[]).flatMap((g) => g.Parameters as string[]);
    assert.equal([...grouped].sort(), Object.keys(j.Parameters).sort(), name);
    for (const [id, p] of Object.entries(j.Parameters as Record<string, Json>)) assert.ok(p.Description, `${name}: ${id}`);
  }
});

test.run();
