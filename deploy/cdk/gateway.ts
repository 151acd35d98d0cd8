/**
 * What both templates share: the resources of a gateway fleet behind a Network Load Balancer,
 * built on the parameters in parameters.ts. The stacks (stacks.ts) differ only in where the
 * network comes from.
 *
 * Everything is an L1 (Cfn*) construct created directly in the stack, so each logical ID is the
 * name given here and the synthesized template reads like one written by hand.
 */
import fs from 'node:fs';
import { Aws, CfnDeletionPolicy, CfnOutput, CfnResource, Fn, Validations, type Stack } from 'aws-cdk-lib';
import { CfnAutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { CfnLaunchTemplate, CfnSecurityGroup, CfnSecurityGroupIngress } from 'aws-cdk-lib/aws-ec2';
import { CfnListener, CfnLoadBalancer, CfnTargetGroup } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { CfnInstanceProfile, CfnRole } from 'aws-cdk-lib/aws-iam';
import { CfnLogGroup } from 'aws-cdk-lib/aws-logs';
import { CfnSecret } from 'aws-cdk-lib/aws-secretsmanager';
import { addFleetParameters, type ParameterGroup } from './parameters.js';

/** The listener's port, the gateway's port and the health port (deploy/systemd/s3gw.env). */
export const CLIENT_PORT = 22;
export const GATEWAY_PORT = 2222;
export const HEALTH_PORT = 9100;

/** Seconds the load balancer keeps a deregistered instance's connections before the instance
 *  is stopped; the gateway then drains what is left for up to its --drain-timeout (120 s). */
export const DEREGISTRATION_DELAY = 120;

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
  /** Resources the load balancer and the instances must wait for: an internet-facing load
   *  balancer needs the internet gateway attached, and instances download as they boot. */
  readonly dependsOn?: CfnResource[];
}

export interface GatewayOptions {
  /** The file `npm pack` makes of this checkout, e.g. s3gw-0.1.0.tgz (for the descriptions). */
  readonly tarball: string;
  /** deploy/bootstrap/s3gw-bootstrap.sh, put into the user data. */
  readonly bootstrapFile: string | URL;
}

/** Adds the gateway fleet to `stack` and returns its parameter groups for the console. */
export function addGateway(stack: Stack, network: Network, opts: GatewayOptions): ParameterGroup[] {
  const p = addFleetParameters(stack, opts.tarball);

  // ---- Shared host key and audit log -------------------------------------------------------
  const secret = new CfnSecret(stack, 'HostKeySecret', {
    description: 'SSH host key seed of the s3gw fleet: every instance derives the same ed25519 key from it.',
    generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
  });
  secret.cfnOptions.condition = p.createSecret;
  // The host key is the service's identity: it outlives the stack (and any replacement), so a
  // stack launched again with HostKeySecretArn set to it shows clients the same key.
  secret.cfnOptions.deletionPolicy = CfnDeletionPolicy.RETAIN;
  secret.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.RETAIN;
  Validations.of(stack).acknowledge({
    id: 'CloudFormation-Validate::W2509',
    reason: 'HostKeySecretArn names a secret; it is not one',
  });
  const secretArn = Fn.conditionIf(p.createSecret.logicalId, secret.ref, p.hostKeySecret.valueAsString).toString();

  const logGroup = new CfnLogGroup(stack, 'AuditLogGroup', { retentionInDays: p.retention.valueAsNumber });
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
        p.packageInS3.logicalId,
        // Inside Fn::If the CDK passes keys through as written, so they are CloudFormation's own.
        {
          PolicyName: 'package',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: 's3:GetObject',
                Resource: Fn.join('', ['arn:', Aws.PARTITION, ':s3:::', Fn.select(1, p.s3Parts)]),
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
    cidrIp: p.clientCidr.valueAsString,
  });
  cidrIngress.cfnOptions.condition = p.hasClientCidr;
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
    sourcePrefixListId: p.clientPrefixList.valueAsString,
  });
  listIngress.cfnOptions.condition = p.hasPrefixList;

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
    // and the npm registry. Amazon's DNS, NTP and instance metadata are not filtered by security
    // groups; DNS servers of one's own are (docs/deploy.md).
    securityGroupEgress: [{ description: 'HTTPS to AWS and package repositories', ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0' }],
  });
  const adminIngress = new CfnSecurityGroupIngress(stack, 'AdminSshIngress', {
    groupId: instanceGroup.attrGroupId,
    description: "Administrators to the instances' sshd",
    ipProtocol: 'tcp',
    fromPort: 22,
    toPort: 22,
    cidrIp: p.adminCidr.valueAsString,
  });
  adminIngress.cfnOptions.condition = p.hasAdminCidr;

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
    p.hasKmsKey.logicalId,
    Fn.join('', ['aws:kms:', p.kmsKey.valueAsString]),
    p.sseMode.valueAsString,
  ).toString();
  const launchTemplate = new CfnLaunchTemplate(stack, 'LaunchTemplate', {
    launchTemplateData: {
      imageId: p.imageId.valueAsString,
      instanceType: p.instanceType.valueAsString,
      iamInstanceProfile: { arn: profile.attrArn },
      keyName: Fn.conditionIf(p.hasKeyName.logicalId, p.keyName.valueAsString, Aws.NO_VALUE).toString(),
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
      userData: Fn.base64(
        Fn.join('', [
          '#!/bin/bash\n',
          '# Parameters of stack ', Aws.STACK_NAME, '; the rest is deploy/bootstrap/s3gw-bootstrap.sh.\n',
          exportLine('S3GW_PACKAGE', p.packageSource.valueAsString),
          exportLine('S3GW_PACKAGE_SHA256', p.packageSha256.valueAsString),
          exportLine('S3GW_NODE_MAJOR', p.nodeMajor.valueAsString),
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
    minSize: p.instanceCount.valueAsString,
    desiredCapacity: p.instanceCount.valueAsString,
    maxSize: p.capacity.findInMap(p.instanceCount.valueAsString, 'MaxSize'),
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
    resourceSignal: { count: p.instanceCount.valueAsNumber, timeout: 'PT15M' },
  };
  // One instance at a time: a new one is started and must signal before an old one is drained
  // and stopped, so InstanceCount instances stay in service throughout.
  group.cfnOptions.updatePolicy = {
    autoScalingRollingUpdate: {
      maxBatchSize: 1,
      minInstancesInService: p.instanceCount.valueAsNumber,
      minSuccessfulInstancesPercent: 100,
      pauseTime: 'PT15M',
      waitOnResourceSignals: true,
      suspendProcesses: ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance', 'AlarmNotification', 'ScheduledActions', 'InstanceRefresh'],
    },
  };
  for (const dep of network.dependsOn ?? []) {
    lb.addResourceDependency(dep);
    group.addResourceDependency(dep);
  }

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

  return p.groups;
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
