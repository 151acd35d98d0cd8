/**
 * The parameters both templates share, with the conditions, the mapping and the rules that read
 * them. Values that reach the instance's shell are constrained by AllowedPattern to characters
 * that need no quoting (the user data single-quotes them too).
 */
import { CfnCondition, CfnMapping, CfnParameter, CfnRule, Fn, type Stack } from 'aws-cdk-lib';

/** The Auto Scaling group's size: at least two instances, one per availability zone. */
export const MIN_INSTANCES = 2;
export const MAX_INSTANCES = 20;

/** CloudWatch Logs' accepted retention values (AWS::Logs::LogGroup RetentionInDays). */
export const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

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

/** The parameters, and what the resources read from them. */
export interface FleetParameters {
  readonly instanceType: CfnParameter;
  readonly imageId: CfnParameter;
  readonly instanceCount: CfnParameter;
  readonly clientCidr: CfnParameter;
  readonly clientPrefixList: CfnParameter;
  readonly sseMode: CfnParameter;
  readonly kmsKey: CfnParameter;
  readonly retention: CfnParameter;
  readonly hostKeySecret: CfnParameter;
  readonly packageSource: CfnParameter;
  readonly packageSha256: CfnParameter;
  readonly nodeMajor: CfnParameter;
  readonly adminCidr: CfnParameter;
  readonly keyName: CfnParameter;
  readonly hasClientCidr: CfnCondition;
  readonly hasPrefixList: CfnCondition;
  readonly hasKmsKey: CfnCondition;
  readonly createSecret: CfnCondition;
  readonly hasAdminCidr: CfnCondition;
  readonly hasKeyName: CfnCondition;
  readonly s3Parts: string[];
  readonly packageInS3: CfnCondition;
  readonly capacity: CfnMapping;
  /** The console's groups of these parameters. */
  readonly groups: ParameterGroup[];
}

/** Adds the shared parameters to `stack`; `tarball` is what `npm pack` makes (for a description). */
export function addFleetParameters(stack: Stack, tarball: string): FleetParameters {
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
      'Amazon Linux 2023 image, as an SSM parameter (...-arm64 for Graviton). A new image rolls the fleet one instance at a time.',
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
    // The full ARN, with the 6-character suffix Secrets Manager adds: the role's policy names
    // exactly this ARN, and IAM matches a secret by its full ARN.
    allowedPattern: '^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6})?$',
    constraintDescription: 'the full ARN of a secret, ending in its 6-character suffix (-AbCdEf)',
    description:
      'Optional full ARN of an existing Secrets Manager secret with the host key (an OpenSSH or PEM private key, or a random string to derive one from). Empty: the stack creates one.',
  });
  // No default: the package is not published on npm, and a default naming an unclaimed npm
  // name would install whatever someone later publishes under it.
  const packageSource = param(stack, 'PackageSource', {
    type: 'String',
    // Bounded so that the user data stays under EC2's 16 KB whatever the values.
    maxLength: 1024,
    allowedPattern: `${SHELL_SAFE.slice(0, -2)}+$`,
    constraintDescription: 'an s3:// or https:// location or an npm spec, without spaces or quotes',
    description: `Required. The gateway package, as \`npm pack\` makes it (${tarball}): s3://bucket/key (the instances may read that object only), an https:// URL, or an npm spec.`,
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

  return {
    instanceType,
    imageId,
    instanceCount,
    clientCidr,
    clientPrefixList,
    sseMode,
    kmsKey,
    retention,
    hostKeySecret,
    packageSource,
    packageSha256,
    nodeMajor,
    adminCidr,
    keyName,
    hasClientCidr,
    hasPrefixList,
    hasKmsKey,
    createSecret,
    hasAdminCidr,
    hasKeyName,
    s3Parts,
    packageInS3,
    capacity,
    groups: [
      { label: 'Instances', parameters: [instanceType, imageId, instanceCount] },
      { label: 'Clients', parameters: [clientCidr, clientPrefixList] },
      { label: 'Storage', parameters: [sseMode, kmsKey] },
      { label: 'Audit log and host key', parameters: [retention, hostKeySecret] },
      { label: 'Software', parameters: [packageSource, packageSha256, nodeMajor] },
      { label: 'Administration', parameters: [adminCidr, keyName] },
    ],
  };
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

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
