/**
 * What both templates share: the parameters and resources of a gateway fleet behind a Network
 * Load Balancer. The stacks (stacks.ts) differ only in where the network comes from.
 *
 * Everything is an L1 (Cfn*) construct created directly in the stack, so each logical ID is the
 * name given here and the synthesized template reads like one written by hand. Parameter values
 * that reach the instance's shell are constrained by AllowedPattern to characters that need no
 * quoting, and are single-quoted anyway.
 */
import fs from 'node:fs';
import {
  Aws,
  CfnCondition,
  CfnMapping,
  CfnOutput,
  CfnParameter,
  CfnResource,
  CfnRule,
  CfnDeletionPolicy,
  Fn,
  Validations,
  type Stack,
} from 'aws-cdk-lib';
import { CfnAutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { CfnLaunchTemplate, CfnSecurityGroup, CfnSecurityGroupIngress } from 'aws-cdk-lib/aws-ec2';
import { CfnListener, CfnLoadBalancer, CfnTargetGroup } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { CfnInstanceProfile, CfnRole } from 'aws-cdk-lib/aws-iam';
import { CfnLogGroup } from 'aws-cdk-lib/aws-logs';
import { CfnSecret } from 'aws-cdk-lib/aws-secretsmanager';

/** The listener's port, the gateway's port and the health port (deploy/systemd/s3gw.env). */
export const CLIENT_PORT = 22;
export const GATEWAY_PORT = 2222;
export const HEALTH_PORT = 9100;

/** The Auto Scaling group's size: at least two instances, one per availability zone. */
export const MIN_INSTANCES = 2;
export const MAX_INSTANCES = 20;

/** Seconds the load balancer keeps a deregistered instance's connections before the instance
 *  is stopped; the gateway then drains what is left for up to its --drain-timeout (120 s). */
export const DEREGISTRATION_DELAY = 120;

/** CloudWatch Logs' accepted retention values (AWS::Logs::LogGroup RetentionInDays). */
export const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** The SSM agent's own API calls, as in the AWS managed policy AmazonSSMManagedInstanceCore
 *  (v2), without its ssm:GetParameter and ssm:GetParameters on every parameter in the
 *  account: Session Manager, Run Command and Patch Manager do not need them. */
export const SSM_AGENT_ACTIONS = [
  'ssm:DescribeAssociation',
  'ssm:GetDeployablePatchSnapshotForInstance',
  'ssm:GetDocument',
  'ssm:DescribeDocument',
  'ssm:GetManifest',
  'ssm:ListAssociations',
  'ssm:ListInstanceAssociations',
  'ssm:PutInventory',
  'ssm:PutComplianceItems',
  'ssm:PutConfigurePackageResult',
  'ssm:UpdateAssociationStatus',
  'ssm:UpdateInstanceAssociationStatus',
  'ssm:UpdateInstanceInformation',
  'ssmmessages:CreateControlChannel',
  'ssmmessages:CreateDataChannel',
  'ssmmessages:OpenControlChannel',
  'ssmmessages:OpenDataChannel',
  'ec2messages:AcknowledgeMessage',
  'ec2messages:DeleteMessage',
  'ec2messages:FailMessage',
  'ec2messages:GetEndpoint',
  'ec2messages:GetMessages',
  'ec2messages:SendReply',
];

/** Where the stack's network comes from. */
export interface Network {
  readonly vpcId: string;
  /** Subnets of the instances (two or more availability zones). */
  readonly instanceSubnets: string[];
  /** Subnets of the load balancer's nodes. */
  readonly loadBalancerSubnets: string[];
  /** 'internet-facing' or 'internal', or a reference to a parameter holding one. */
  readonly scheme: string;
  /** Whether instances get a public address (to reach AWS and the package repositories
   *  without a NAT gateway): a value, or a reference to a parameter holding 'true' or 'false'. */
  readonly assignPublicIp: boolean | string;
  /** Resources the instances must wait for (the route to the internet gateway). */
  readonly dependsOn?: CfnResource[];
}

export interface GatewayOptions {
  /** The file `npm pack` makes of this checkout, e.g. s3gw-0.1.0.tgz (for the descriptions). */
  readonly tarball: string;
  /** deploy/bootstrap/s3gw-bootstrap.sh, put into the user data. */
  readonly bootstrapFile: string | URL;
}

/** A parameter group for the console (AWS::CloudFormation::Interface). */
export interface ParameterGroup {
  readonly label: string;
  readonly parameters: CfnParameter[];
}

const SHELL_SAFE = '^[A-Za-z0-9@/:._~%+=?&,-]*$';
const CIDR = '^(([0-9]{1,3}\\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2]))?$';

function param(stack: Stack, id: string, props: ConstructorParameters<typeof CfnParameter>[2]): CfnParameter {
  return new CfnParameter(stack, id, props);
}

function condition(stack: Stack, id: string, expression: ReturnType<typeof Fn.conditionEquals>): CfnCondition {
  return new CfnCondition(stack, id, { expression });
}

const notEmpty = (p: CfnParameter) => Fn.conditionNot(Fn.conditionEquals(p.valueAsString, ''));

/** Adds the gateway fleet to `stack` and returns its parameter groups for the console. */
export function addGateway(stack: Stack, network: Network, opts: GatewayOptions): ParameterGroup[] {
  // ---- Parameters ------------------------------------------------------------------------
  const instanceType = param(stack, 'InstanceType', {
    type: 'String',
    default: 'm5.large',
    allowedPattern: '^(m5|m5n|m6i|m6in|m7i|m8i|c5|c5n|c6i|c6in|c7i|c8i|r5|r6i|r7i|m6g|m7g|m8g|c6g|c7g|c8g)\\.(large|[0-9]*xlarge)$',
    constraintDescription: 'an m5.large or newer instance type (Graviton types need the arm64 ImageId)',
    description: 'EC2 instance type: m5.large or newer. For Graviton (m7g, c7g, ...) set ImageId to the arm64 image.',
  });
  const imageId = param(stack, 'ImageId', {
    type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
    default: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    description:
      'Amazon Linux 2023 image, as an SSM parameter (…-arm64 for Graviton). A new image rolls the fleet one instance at a time.',
  });
  const instanceCount = param(stack, 'InstanceCount', {
    type: 'Number',
    default: String(MIN_INSTANCES),
    allowedValues: range(MIN_INSTANCES, MAX_INSTANCES).map(String),
    description: 'Instances in service (at least 2, spread over the availability zones).',
  });
  const clientCidr = param(stack, 'ClientCidr', {
    type: 'String',
    default: '0.0.0.0/0',
    allowedPattern: CIDR,
    constraintDescription: 'an IPv4 CIDR such as 203.0.113.0/24, or empty',
    description: 'Clients allowed to connect to port 22 of the load balancer (empty: only ClientPrefixListId).',
  });
  const clientPrefixList = param(stack, 'ClientPrefixListId', {
    type: 'String',
    default: '',
    allowedPattern: '^(pl-[0-9a-f]+)?$',
    description: 'Optional managed prefix list of further client CIDRs.',
  });
  const sseMode = param(stack, 'SseMode', {
    type: 'String',
    default: 'AES256',
    allowedValues: ['AES256', 'aws:kms', 'none'],
    description:
      'Server-side encryption the gateway asks for on every upload: AES256 (SSE-S3), aws:kms (SSE-KMS), or none (the bucket default applies).',
  });
  const kmsKey = param(stack, 'KmsKeyArn', {
    type: 'String',
    default: '',
    maxLength: 256,
    allowedPattern: '^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+)?$',
    description:
      'With SseMode aws:kms: the KMS key ARN to encrypt with (empty: the aws/s3 key). Users need kms:GenerateDataKey and kms:Decrypt on it.',
  });
  const retention = param(stack, 'AuditLogRetentionDays', {
    type: 'Number',
    default: '365',
    allowedValues: RETENTION_DAYS.map(String),
    description: 'Days CloudWatch Logs keeps the audit log.',
  });
  const hostKeySecret = param(stack, 'HostKeySecretArn', {
    type: 'String',
    default: '',
    maxLength: 512,
    allowedPattern: '^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$',
    description:
      'Optional existing Secrets Manager secret with the host key (an OpenSSH or PEM private key, or a random string to derive one from). Empty: the stack creates one.',
  });
  // No default: the package is not published on npm, and a default naming an unclaimed npm
  // name would install whatever someone later publishes under it.
  const packageSource = param(stack, 'PackageSource', {
    type: 'String',
    // Bounded so that the user data stays under EC2's 16 KB whatever the values.
    maxLength: 1024,
    allowedPattern: `${SHELL_SAFE.slice(0, -2)}+$`,
    constraintDescription: 'an s3:// or https:// location or an npm spec, without spaces or quotes',
    description: `Required. The gateway package, as \`npm pack\` makes it (${opts.tarball}): s3://bucket/key (the instances may read that object only), an https:// URL, or an npm spec.`,
  });
  const packageSha256 = param(stack, 'PackageSha256', {
    type: 'String',
    default: '',
    allowedPattern: '^([0-9a-fA-F]{64})?$',
    description: 'Optional SHA-256 (hex) the package tarball must have.',
  });
  const nodeMajor = param(stack, 'NodeMajorVersion', {
    type: 'String',
    default: '22',
    allowedValues: ['20', '22', '24'],
    description: "Node.js major version from the Amazon Linux 2023 repositories (checked against the package's engines).",
  });
  const adminCidr = param(stack, 'AdminSshCidr', {
    type: 'String',
    default: '',
    allowedPattern: CIDR,
    description:
      "Leave empty: administration goes through Systems Manager. A CIDR opens the instances' own sshd on port 22 to it.",
  });
  const keyName = param(stack, 'KeyName', {
    type: 'String',
    default: '',
    allowedPattern: '^[\\x20-\\x7e]*$',
    description: "Optional EC2 key pair for the instances' sshd (only useful with AdminSshCidr).",
  });

  // ---- Conditions, mappings and rules ----------------------------------------------------
  const hasClientCidr = condition(stack, 'HasClientCidr', notEmpty(clientCidr));
  const hasPrefixList = condition(stack, 'HasClientPrefixList', notEmpty(clientPrefixList));
  const hasKmsKey = condition(stack, 'HasKmsKey', notEmpty(kmsKey));
  const createSecret = condition(stack, 'CreateHostKeySecret', Fn.conditionEquals(hostKeySecret.valueAsString, ''));
  const hasAdminCidr = condition(stack, 'HasAdminSshCidr', notEmpty(adminCidr));
  const hasKeyName = condition(stack, 'HasKeyName', notEmpty(keyName));
  // "starts with s3://": the text before the first "s3://" of "x" + source is exactly "x".
  const s3Parts = Fn.split('s3://', Fn.join('', ['x', packageSource.valueAsString, 's3://']));
  const packageInS3 = condition(stack, 'PackageInS3', Fn.conditionEquals(Fn.select(0, s3Parts), 'x'));

  // Rolling updates keep InstanceCount in service and add one instance at a time, so the
  // group's maximum is one more than the count: CloudFormation has no arithmetic, so a map.
  const capacity = new CfnMapping(stack, 'Capacity', {
    mapping: Object.fromEntries(range(MIN_INSTANCES, MAX_INSTANCES).map((n) => [`${n}`, { MaxSize: `${n + 1}` }])),
  });

  new CfnRule(stack, 'KmsKeyNeedsKmsMode', {
    ruleCondition: notEmpty(kmsKey),
    assertions: [
      {
        assert: Fn.conditionEquals(sseMode.valueAsString, 'aws:kms'),
        assertDescription: 'KmsKeyArn is used only with SseMode aws:kms',
      },
    ],
  });
  new CfnRule(stack, 'SomeClientsAllowed', {
    assertions: [
      {
        assert: Fn.conditionOr(notEmpty(clientCidr), notEmpty(clientPrefixList)),
        assertDescription: 'Set ClientCidr or ClientPrefixListId, or no client can connect',
      },
    ],
  });

  // ---- Shared host key and audit log -------------------------------------------------------
  const secret = new CfnSecret(stack, 'HostKeySecret', {
    description: 'SSH host key seed of the s3gw fleet: every instance derives the same ed25519 key from it.',
    generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
  });
  secret.cfnOptions.condition = createSecret;
  Validations.of(stack).acknowledge({
    id: 'CloudFormation-Validate::W2509',
    reason: 'HostKeySecretArn names a secret; it is not one',
  });
  const secretArn = Fn.conditionIf(createSecret.logicalId, secret.ref, hostKeySecret.valueAsString).toString();

  const logGroup = new CfnLogGroup(stack, 'AuditLogGroup', { retentionInDays: retention.valueAsNumber });
  // Audit records outlive the stack that wrote them.
  logGroup.cfnOptions.deletionPolicy = CfnDeletionPolicy.RETAIN;
  logGroup.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.RETAIN;

  // ---- Instance role: the audit log, the host key, its own package, and the SSM agent ----
  const role = new CfnRole(stack, 'InstanceRole', {
    description: "s3gw instances: write the audit log, read the host key; S3 calls use each user's own keys",
    assumeRolePolicyDocument: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    },
    policies: [
      {
        policyName: 'audit-log',
        policyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
              Resource: [
                Fn.sub('arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}'),
                Fn.sub('arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${AuditLogGroup}:log-stream:*'),
              ],
            },
          ],
        },
      },
      {
        policyName: 'host-key',
        policyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArn }],
        },
      },
      {
        policyName: 'ssm-agent',
        policyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: SSM_AGENT_ACTIONS, Resource: '*' }],
        },
      },
      Fn.conditionIf(
        packageInS3.logicalId,
        // Inside Fn::If the CDK passes keys through as written, so they are CloudFormation's own.
        {
          PolicyName: 'package',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: 's3:GetObject',
                Resource: Fn.join('', ['arn:', Aws.PARTITION, ':s3:::', Fn.select(1, s3Parts)]),
              },
            ],
          },
        },
        Aws.NO_VALUE,
      ),
    ] as CfnRole.PolicyProperty[],
  });
  const profile = new CfnInstanceProfile(stack, 'InstanceProfile', { roles: [role.ref] });

  // ---- Security groups: clients reach the load balancer; only it reaches the instances ----
  const lbGroup = new CfnSecurityGroup(stack, 'LoadBalancerSecurityGroup', {
    groupDescription: 's3gw load balancer: SFTP/SCP clients on port 22',
    vpcId: network.vpcId,
  });
  const cidrIngress = new CfnSecurityGroupIngress(stack, 'ClientCidrIngress', {
    groupId: lbGroup.attrGroupId,
    description: 'SFTP/SCP clients',
    ipProtocol: 'tcp',
    fromPort: CLIENT_PORT,
    toPort: CLIENT_PORT,
    cidrIp: clientCidr.valueAsString,
  });
  cidrIngress.cfnOptions.condition = hasClientCidr;
  Validations.of(cidrIngress).acknowledge({
    id: 'CloudFormation-Validate::W2508',
    reason: 'port 22 of the load balancer is the SFTP service itself; ClientCidr narrows it',
  });
  const listIngress = new CfnSecurityGroupIngress(stack, 'ClientPrefixListIngress', {
    groupId: lbGroup.attrGroupId,
    description: 'SFTP/SCP clients (prefix list)',
    ipProtocol: 'tcp',
    fromPort: CLIENT_PORT,
    toPort: CLIENT_PORT,
    sourcePrefixListId: clientPrefixList.valueAsString,
  });
  listIngress.cfnOptions.condition = hasPrefixList;

  const instanceGroup = new CfnSecurityGroup(stack, 'InstanceSecurityGroup', {
    groupDescription: 's3gw instances: the gateway and its health check, from the load balancer only',
    vpcId: network.vpcId,
    // The load balancer keeps the client's address (client IP preservation), and a rule that
    // names its security group admits that traffic; nothing else may reach the instances.
    securityGroupIngress: [
      {
        description: 'SSH from the load balancer',
        ipProtocol: 'tcp',
        fromPort: GATEWAY_PORT,
        toPort: GATEWAY_PORT,
        sourceSecurityGroupId: lbGroup.attrGroupId,
      },
      {
        description: 'Health checks from the load balancer',
        ipProtocol: 'tcp',
        fromPort: HEALTH_PORT,
        toPort: HEALTH_PORT,
        sourceSecurityGroupId: lbGroup.attrGroupId,
      },
    ],
    // HTTPS out only: S3, STS, CloudWatch Logs, Secrets Manager, SSM, the package repositories
    // and the npm registry. DNS, NTP and instance metadata are link-local and not filtered.
    securityGroupEgress: [{ description: 'HTTPS to AWS and package repositories', ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0' }],
  });
  const adminIngress = new CfnSecurityGroupIngress(stack, 'AdminSshIngress', {
    groupId: instanceGroup.attrGroupId,
    description: "Administrators to the instances' sshd",
    ipProtocol: 'tcp',
    fromPort: 22,
    toPort: 22,
    cidrIp: adminCidr.valueAsString,
  });
  adminIngress.cfnOptions.condition = hasAdminCidr;

  // ---- Load balancer -----------------------------------------------------------------------
  const lb = new CfnLoadBalancer(stack, 'LoadBalancer', {
    type: 'network',
    scheme: network.scheme,
    subnets: network.loadBalancerSubnets,
    securityGroups: [lbGroup.attrGroupId],
    loadBalancerAttributes: [{ key: 'load_balancing.cross_zone.enabled', value: 'true' }],
  });
  const targets = new CfnTargetGroup(stack, 'TargetGroup', {
    protocol: 'TCP',
    port: GATEWAY_PORT,
    targetType: 'instance',
    vpcId: network.vpcId,
    healthCheckProtocol: 'HTTP',
    healthCheckPort: String(HEALTH_PORT),
    healthCheckPath: '/health',
    healthCheckIntervalSeconds: 10,
    healthCheckTimeoutSeconds: 5,
    healthyThresholdCount: 2,
    unhealthyThresholdCount: 2,
    matcher: { httpCode: '200' },
    targetGroupAttributes: [
      { key: 'deregistration_delay.timeout_seconds', value: String(DEREGISTRATION_DELAY) },
      { key: 'preserve_client_ip.enabled', value: 'true' },
      { key: 'proxy_protocol_v2.enabled', value: 'false' },
    ],
  });
  new CfnListener(stack, 'Listener', {
    loadBalancerArn: lb.ref,
    protocol: 'TCP',
    port: CLIENT_PORT,
    defaultActions: [{ type: 'forward', targetGroupArn: targets.ref }],
  });

  // ---- Instances -------------------------------------------------------------------------
  const sse = Fn.conditionIf(
    hasKmsKey.logicalId,
    Fn.join('', ['aws:kms:', kmsKey.valueAsString]),
    sseMode.valueAsString,
  ).toString();
  const launchTemplate = new CfnLaunchTemplate(stack, 'LaunchTemplate', {
    launchTemplateData: {
      imageId: imageId.valueAsString,
      instanceType: instanceType.valueAsString,
      iamInstanceProfile: { arn: profile.attrArn },
      keyName: Fn.conditionIf(hasKeyName.logicalId, keyName.valueAsString, Aws.NO_VALUE).toString(),
      networkInterfaces: [
        {
          deviceIndex: 0,
          // A parameter reference is a token, which the boolean property accepts as it stands.
          associatePublicIpAddress: network.assignPublicIp as boolean,
          groups: [instanceGroup.attrGroupId],
          deleteOnTermination: true,
        },
      ],
      // IMDSv2 only, and not reachable from a container or a forwarded hop.
      metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
      blockDeviceMappings: [
        { deviceName: '/dev/xvda', ebs: { volumeType: 'gp3', volumeSize: 8, encrypted: true, deleteOnTermination: true } },
      ],
      tagSpecifications: [{ resourceType: 'instance', tags: [{ key: 'Name', value: Aws.STACK_NAME }] }],
      userData: Fn.base64(
        Fn.join('', [
          '#!/bin/bash\n',
          '# Parameters of stack ', Aws.STACK_NAME, '; the rest is deploy/bootstrap/s3gw-bootstrap.sh.\n',
          exportLine('S3GW_PACKAGE', packageSource.valueAsString),
          exportLine('S3GW_PACKAGE_SHA256', packageSha256.valueAsString),
          exportLine('S3GW_NODE_MAJOR', nodeMajor.valueAsString),
          exportLine('S3GW_HOST_KEY_SECRET', secretArn),
          exportLine('S3GW_LOG_GROUP', logGroup.ref),
          exportLine('S3GW_SSE', sse),
          exportLine('S3GW_REGION', Aws.REGION),
          exportLine('S3GW_STACK', Aws.STACK_NAME),
          exportLine('S3GW_RESOURCE', 'AutoScalingGroup'),
          bootstrapBody(opts.bootstrapFile),
        ]),
      ),
    },
  });

  const group = new CfnAutoScalingGroup(stack, 'AutoScalingGroup', {
    minSize: instanceCount.valueAsString,
    desiredCapacity: instanceCount.valueAsString,
    maxSize: capacity.findInMap(instanceCount.valueAsString, 'MaxSize'),
    vpcZoneIdentifier: network.instanceSubnets,
    launchTemplate: { launchTemplateId: launchTemplate.ref, version: launchTemplate.attrLatestVersionNumber },
    targetGroupArns: [targets.ref],
    // The load balancer's health check (/health) decides, so a hung gateway is replaced too.
    healthCheckType: 'ELB',
    healthCheckGracePeriod: 600,
    tags: [{ key: 'Name', value: Aws.STACK_NAME, propagateAtLaunch: true }],
  });
  // Created only when every instance has signalled that its gateway answers /health.
  group.cfnOptions.creationPolicy = {
    autoScalingCreationPolicy: { minSuccessfulInstancesPercent: 100 },
    resourceSignal: { count: instanceCount.valueAsNumber, timeout: 'PT15M' },
  };
  // One instance at a time: a new one is started and must signal before an old one is drained
  // and stopped, so InstanceCount instances stay in service throughout.
  group.cfnOptions.updatePolicy = {
    autoScalingRollingUpdate: {
      maxBatchSize: 1,
      minInstancesInService: instanceCount.valueAsNumber,
      minSuccessfulInstancesPercent: 100,
      pauseTime: 'PT15M',
      waitOnResourceSignals: true,
      suspendProcesses: ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance', 'AlarmNotification', 'ScheduledActions', 'InstanceRefresh'],
    },
  };
  for (const dep of network.dependsOn ?? []) group.addResourceDependency(dep);

  // ---- Outputs -------------------------------------------------------------------------------
  new CfnOutput(stack, 'LoadBalancerDnsName', {
    description: 'Connect here: sftp ACCESS_KEY_ID@<this name>',
    value: lb.attrDnsName,
  });
  new CfnOutput(stack, 'AuditLogGroupName', { description: 'CloudWatch Logs group of the audit log', value: logGroup.ref });
  new CfnOutput(stack, 'SharedHostKeySecret', {
    description: 'Secrets Manager secret of the shared host key',
    value: secretArn,
  });
  // The validator reports this on the stack, not on the output.
  Validations.of(stack).acknowledge({
    id: 'CloudFormation-Validate::W1001',
    reason: 'HostKeySecret is referenced only in the branch of its own condition',
  });
  new CfnOutput(stack, 'AutoScalingGroupName', { description: 'The instances', value: group.ref });
  new CfnOutput(stack, 'InstanceRoleArn', { description: 'Role of the instances', value: role.attrArn });

  return [
    { label: 'Instances', parameters: [instanceType, imageId, instanceCount] },
    { label: 'Clients', parameters: [clientCidr, clientPrefixList] },
    { label: 'Storage', parameters: [sseMode, kmsKey] },
    { label: 'Audit log and host key', parameters: [retention, hostKeySecret] },
    { label: 'Software', parameters: [packageSource, packageSha256, nodeMajor] },
    { label: 'Administration', parameters: [adminCidr, keyName] },
  ];
}

/** Adds the console's parameter groups (AWS::CloudFormation::Interface). */
export function addParameterGroups(stack: Stack, groups: ParameterGroup[]): void {
  stack.templateOptions.metadata = {
    'AWS::CloudFormation::Interface': {
      ParameterGroups: groups.map((g) => ({
        Label: { default: g.label },
        Parameters: g.parameters.map((p) => p.logicalId),
      })),
    },
  };
}

function exportLine(name: string, value: string): string {
  return Fn.join('', [`export ${name}='`, value, "'\n"]);
}

/** The bootstrap script without its shebang line (the user data has its own). */
export function bootstrapBody(file: string | URL): string {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.startsWith('#!')) throw new Error(`${String(file)}: expected a #! line`);
  return text.slice(text.indexOf('\n') + 1);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
