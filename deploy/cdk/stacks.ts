/**
 * The two templates. Standalone builds its own VPC (two public subnets in two availability
 * zones and an internet gateway); ExistingVpc takes the VPC and subnets as parameters and can put
 * the load balancer on the internet or inside the VPC. Both then add the same fleet (gateway.ts).
 */
import { App, CfnParameter, CfnRule, DefaultStackSynthesizer, Fn, Stack, Token } from 'aws-cdk-lib';
import {
  CfnInternetGateway,
  CfnRoute,
  CfnRouteTable,
  CfnSubnet,
  CfnSubnetRouteTableAssociation,
  CfnVPC,
  CfnVPCGatewayAttachment,
} from 'aws-cdk-lib/aws-ec2';
import { addGateway, type GatewayOptions } from './gateway.js';
import { addParameterGroups } from './parameters.js';

/** File names under deploy/cloudformation/, by stack. */
export const TEMPLATE_FILES = {
  standalone: 's3gw-standalone.template.json',
  existingVpc: 's3gw-existing-vpc.template.json',
} as const;

const CIDR = '^([0-9]{1,3}\\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$';

/** Plain templates: no CDK bootstrap stack, version rule, asset or metadata resource. */
function plainStack(app: App, id: string, description: string): Stack {
  return new Stack(app, id, {
    description,
    synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
    analyticsReporting: false,
  });
}

export function standaloneStack(app: App, opts: GatewayOptions): Stack {
  const stack = plainStack(
    app,
    'S3gwStandalone',
    's3gw SFTP/SCP gateway to S3 in a new VPC: two public subnets in two availability zones, an internet-facing Network Load Balancer on port 22, and an Auto Scaling group of gateway instances',
  );
  const vpcCidr = new CfnParameter(stack, 'VpcCidr', {
    type: 'String',
    default: '10.0.0.0/16',
    allowedPattern: CIDR,
    description: 'Address range of the new VPC.',
  });
  const subnetCidrs = [
    new CfnParameter(stack, 'PublicSubnet1Cidr', {
      type: 'String',
      default: '10.0.0.0/24',
      allowedPattern: CIDR,
      description: 'Public subnet in the first availability zone.',
    }),
    new CfnParameter(stack, 'PublicSubnet2Cidr', {
      type: 'String',
      default: '10.0.1.0/24',
      allowedPattern: CIDR,
      description: 'Public subnet in the second availability zone.',
    }),
  ];

  const vpc = new CfnVPC(stack, 'Vpc', {
    cidrBlock: vpcCidr.valueAsString,
    enableDnsHostnames: true,
    enableDnsSupport: true,
    tags: [{ key: 'Name', value: stack.stackName }],
  });
  const igw = new CfnInternetGateway(stack, 'InternetGateway', { tags: [{ key: 'Name', value: stack.stackName }] });
  const attachment = new CfnVPCGatewayAttachment(stack, 'InternetGatewayAttachment', {
    vpcId: vpc.ref,
    internetGatewayId: igw.ref,
  });
  const routes = new CfnRouteTable(stack, 'PublicRouteTable', {
    vpcId: vpc.ref,
    tags: [{ key: 'Name', value: stack.stackName }],
  });
  const defaultRoute = new CfnRoute(stack, 'PublicDefaultRoute', {
    routeTableId: routes.ref,
    destinationCidrBlock: '0.0.0.0/0',
    gatewayId: igw.ref,
  });
  defaultRoute.addResourceDependency(attachment);
  const subnets = subnetCidrs.map((cidr, i) => {
    const subnet = new CfnSubnet(stack, `PublicSubnet${i + 1}`, {
      vpcId: vpc.ref,
      cidrBlock: cidr.valueAsString,
      availabilityZone: Fn.select(i, Fn.getAzs()),
      // Instances get their public address from the launch template; nothing else is launched here.
      mapPublicIpOnLaunch: false,
      tags: [{ key: 'Name', value: `${stack.stackName}-public-${i + 1}` }],
    });
    new CfnSubnetRouteTableAssociation(stack, `PublicSubnet${i + 1}Routes`, {
      subnetId: subnet.ref,
      routeTableId: routes.ref,
    });
    return subnet;
  });
  const ids = subnets.map((s) => s.ref);

  const groups = addGateway(
    stack,
    {
      vpcId: vpc.ref,
      instanceSubnets: ids,
      loadBalancerSubnets: ids,
      scheme: 'internet-facing',
      assignPublicIp: true,
      // The route out depends on the gateway's attachment, which an internet-facing load
      // balancer needs (CloudFormation's DependsOn documentation lists it); instances download
      // packages as they boot.
      dependsOn: [defaultRoute],
    },
    opts,
  );
  addParameterGroups(stack, [{ label: 'Network', parameters: [vpcCidr, ...subnetCidrs] }, ...groups]);
  return stack;
}

export function existingVpcStack(app: App, opts: GatewayOptions): Stack {
  const stack = plainStack(
    app,
    'S3gwExistingVpc',
    's3gw SFTP/SCP gateway to S3 in an existing VPC: a Network Load Balancer on port 22 (internet-facing or internal) and an Auto Scaling group of gateway instances',
  );
  const vpcId = new CfnParameter(stack, 'VpcId', {
    type: 'AWS::EC2::VPC::Id',
    description: 'The VPC to run in.',
  });
  const instanceSubnets = new CfnParameter(stack, 'InstanceSubnetIds', {
    type: 'List<AWS::EC2::Subnet::Id>',
    description:
      'Subnets of the instances, in two or more availability zones. They need a way out to AWS and the package repositories: a NAT gateway, or public subnets with AssignPublicIp true.',
  });
  const lbSubnets = new CfnParameter(stack, 'LoadBalancerSubnetIds', {
    type: 'List<AWS::EC2::Subnet::Id>',
    description:
      'Subnets of the load balancer, one per availability zone, covering every zone of InstanceSubnetIds: public subnets for an internet-facing one.',
  });
  const scheme = new CfnParameter(stack, 'LoadBalancerScheme', {
    type: 'String',
    default: 'internet-facing',
    allowedValues: ['internet-facing', 'internal'],
    description: 'internet-facing, or internal for clients inside the VPC or connected to it.',
  });
  const publicIp = new CfnParameter(stack, 'AssignPublicIp', {
    type: 'String',
    default: 'false',
    allowedValues: ['true', 'false'],
    description: 'Give instances public addresses (only in public subnets without a NAT gateway).',
  });
  new CfnRule(stack, 'SubnetsInVpc', {
    assertions: [
      {
        assert: Fn.conditionEachMemberEquals(
          Fn.valueOfAll('AWS::EC2::Subnet::Id', 'VpcId'),
          vpcId.valueAsString,
        ),
        assertDescription: 'All subnets must be in the VPC given as VpcId',
      },
      {
        // The load balancer sends nothing to instances in zones it has no node in.
        assert: Fn.conditionEachMemberIn(
          Token.asList(Fn.valueOf(instanceSubnets.logicalId, 'AvailabilityZone')),
          Token.asList(Fn.valueOf(lbSubnets.logicalId, 'AvailabilityZone')),
        ),
        assertDescription: "LoadBalancerSubnetIds must cover every availability zone of InstanceSubnetIds",
      },
    ],
  });

  const groups = addGateway(
    stack,
    {
      vpcId: vpcId.valueAsString,
      instanceSubnets: instanceSubnets.valueAsList,
      loadBalancerSubnets: lbSubnets.valueAsList,
      scheme: scheme.valueAsString,
      assignPublicIp: publicIp.valueAsString,
    },
    opts,
  );
  addParameterGroups(stack, [
    { label: 'Network', parameters: [vpcId, instanceSubnets, lbSubnets, scheme, publicIp] },
    ...groups,
  ]);
  return stack;
}
