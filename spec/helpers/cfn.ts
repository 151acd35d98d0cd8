/**
 * A small evaluator of the CloudFormation a template of ours uses, for tests that need to know
 * what a stack would hold for given parameter values: the user data an instance runs, the
 * policies its role gets, which conditions and rules hold.
 *
 * It follows CloudFormation's rules for what it covers (parameter defaults and constraints,
 * Ref, Fn::If, Fn::Join, Fn::Select, Fn::Split, Fn::Sub, Fn::FindInMap, Fn::GetAtt, Fn::Base64,
 * condition functions, the rule functions Fn::ValueOf, Fn::ValueOfAll, Fn::EachMemberEquals and
 * Fn::EachMemberIn, AWS::NoValue) and throws on anything else, so a template that grows a new
 * construct fails loudly here instead of being half-evaluated.
 */
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const NO_VALUE = Symbol('AWS::NoValue');

export interface StackContext {
  /** Parameter values given at launch; defaults fill the rest. */
  readonly parameters: Record<string, string>;
  /** What `Ref` of a resource gives (its physical id), by logical id; else `<stack>-<id>`. */
  readonly refs?: Record<string, string>;
  /** What `Fn::GetAtt` gives, by "LogicalId.Attribute"; else `<id>.<attribute>`. */
  readonly attributes?: Record<string, string>;
  /** What rules' Fn::ValueOfAll sees, by "ParameterType.Attribute" (AWS::EC2::Subnet::Id.VpcId):
   *  the attribute of every value of every parameter of that type. */
  readonly valuesOfAll?: Record<string, string[]>;
  /** What rules' Fn::ValueOf sees, by "Parameter.Attribute" (InstanceSubnetIds.AvailabilityZone):
   *  the attribute of each value of that parameter. */
  readonly valuesOf?: Record<string, string[]>;
  readonly stackName?: string;
  readonly region?: string;
  readonly accountId?: string;
}

export class Stack {
  readonly template: Json;
  readonly parameters: Record<string, string>;
  readonly #ctx: StackContext;
  readonly #conditions = new Map<string, boolean>();

  constructor(template: Json, ctx: StackContext) {
    this.template = template;
    this.#ctx = ctx;
    this.parameters = resolveParameters(template, ctx.parameters);
  }

  /** Whether a named condition holds. */
  condition(name: string): boolean {
    const known = this.#conditions.get(name);
    if (known !== undefined) return known;
    const expr = this.template.Conditions?.[name];
    if (expr === undefined) throw new Error(`no condition ${name}`);
    const value = this.#truth(expr);
    this.#conditions.set(name, value);
    return value;
  }

  /** Names of the rules whose assertions fail (their descriptions). */
  failingRules(): string[] {
    const out: string[] = [];
    for (const [name, rule] of Object.entries((this.template.Rules ?? {}) as Record<string, Json>)) {
      if (rule.RuleCondition !== undefined && !this.#truth(rule.RuleCondition)) continue;
      for (const a of rule.Assertions as Json[]) if (!this.#truth(a.Assert)) out.push(`${name}: ${a.AssertDescription}`);
    }
    return out;
  }

  /** Whether a resource is created. */
  exists(id: string): boolean {
    const r = this.template.Resources[id];
    if (!r) throw new Error(`no resource ${id}`);
    return r.Condition === undefined || this.condition(r.Condition);
  }

  /** A resource's properties, evaluated (AWS::NoValue entries removed). */
  properties(id: string): Json {
    if (!this.exists(id)) throw new Error(`${id} is not created with these parameters`);
    return this.value(this.template.Resources[id].Properties ?? {});
  }

  /** Evaluates any part of the template. */
  value(node: Json): Json {
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map((n) => this.value(n)).filter((v) => v !== NO_VALUE);
    const keys = Object.keys(node);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) return this.#intrinsic(keys[0]!, node[keys[0]!]);
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) {
      const e = this.value(v);
      if (e !== NO_VALUE) out[k] = e;
    }
    return out;
  }

  #intrinsic(fn: string, arg: Json): Json {
    switch (fn) {
      case 'Ref':
        return this.#ref(arg);
      case 'Fn::If': {
        const [cond, yes, no] = arg as [string, Json, Json];
        return this.value(this.condition(cond) ? yes : no);
      }
      case 'Fn::Join': {
        const [sep, list] = arg as [string, Json[]];
        const items = this.value(list) as Json[];
        return items.map((x) => this.#string(x)).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [Json, Json];
        const items = this.value(list) as Json[];
        const i = Number(this.value(index));
        // CloudFormation fails the operation on an index out of range.
        if (!Array.isArray(items) || !(i >= 0 && i < items.length)) throw new Error(`Fn::Select index ${i} out of range`);
        return items[i];
      }
      case 'Fn::Split': {
        const [sep, s] = arg as [string, Json];
        return this.#string(this.value(s)).split(sep);
      }
      case 'Fn::Sub': {
        if (typeof arg !== 'string') throw new Error('Fn::Sub with a variable map is not supported here');
        return arg.replace(/\$\{([^}]+)\}/g, (_, name: string) =>
          name.includes('.') ? this.#getAtt(name) : this.#string(this.#ref(name)),
        );
      }
      case 'Fn::FindInMap': {
        const [map, top, second] = (arg as Json[]).map((x) => this.value(x));
        const v = this.template.Mappings?.[map]?.[top]?.[second];
        if (v === undefined) throw new Error(`Fn::FindInMap ${map}/${top}/${second}: no such entry`);
        return v;
      }
      case 'Fn::GetAtt': {
        const [id, attr] = arg as [string, string];
        return this.#getAtt(`${id}.${attr}`);
      }
      case 'Fn::Base64':
        // Kept as text: tests read the user data, EC2 decodes it anyway.
        return this.#string(this.value(arg));
      case 'Fn::ValueOfAll': {
        const [type, attr] = arg as [string, string];
        const v = this.#ctx.valuesOfAll?.[`${type}.${attr}`];
        if (v === undefined) throw new Error(`the test gives no Fn::ValueOfAll for ${type}.${attr}`);
        return v;
      }
      case 'Fn::ValueOf': {
        const [param, attr] = arg as [string, string];
        const v = this.#ctx.valuesOf?.[`${param}.${attr}`];
        if (v === undefined) throw new Error(`the test gives no Fn::ValueOf for ${param}.${attr}`);
        return v;
      }
      case 'Fn::GetAZs':
        return ['us-east-1a', 'us-east-1b', 'us-east-1c'];
      default:
        throw new Error(`${fn} is not supported by this evaluator`);
    }
  }

  #ref(name: string): Json {
    switch (name) {
      case 'AWS::NoValue':
        return NO_VALUE;
      case 'AWS::StackName':
        return this.#ctx.stackName ?? 'test-stack';
      case 'AWS::Region':
        return this.#ctx.region ?? 'us-east-1';
      case 'AWS::AccountId':
        return this.#ctx.accountId ?? '123456789012';
      case 'AWS::Partition':
        return 'aws';
    }
    if (name in this.parameters) {
      const type = String(this.template.Parameters[name].Type);
      return type.startsWith('List<') || type === 'CommaDelimitedList' ? this.parameters[name]!.split(',') : this.parameters[name];
    }
    if (name in this.template.Resources) {
      if (!this.exists(name)) throw new Error(`Ref to ${name}, which is not created with these parameters`);
      return this.#ctx.refs?.[name] ?? `${this.#ref('AWS::StackName')}-${name}`;
    }
    throw new Error(`Ref to unknown ${name}`);
  }

  #getAtt(key: string): string {
    return this.#ctx.attributes?.[key] ?? key;
  }

  #string(v: Json): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(`expected a string, got ${JSON.stringify(v)}`);
  }

  #truth(expr: Json): boolean {
    if (typeof expr === 'object' && expr !== null && 'Condition' in expr) return this.condition(expr.Condition);
    const [fn] = Object.keys(expr);
    const arg = expr[fn!];
    switch (fn) {
      case 'Fn::Equals': {
        const [a, b] = (arg as Json[]).map((x) => this.value(x));
        return JSON.stringify(a) === JSON.stringify(b);
      }
      case 'Fn::Not':
        return !this.#truth(arg[0]);
      case 'Fn::And':
        return (arg as Json[]).every((x) => this.#truth(x));
      case 'Fn::Or':
        return (arg as Json[]).some((x) => this.#truth(x));
      case 'Fn::EachMemberEquals': {
        const [list, v] = (arg as Json[]).map((x) => this.value(x));
        return (list as Json[]).every((x) => x === v);
      }
      case 'Fn::EachMemberIn': {
        const [list, allowed] = (arg as Json[]).map((x) => this.value(x)) as [Json[], Json[]];
        return list.every((x) => allowed.includes(x));
      }
      default:
        throw new Error(`condition function ${fn} is not supported by this evaluator`);
    }
  }
}

/**
 * Parameter values as CloudFormation would accept them: defaults applied, then each value checked
 * against AllowedValues, AllowedPattern (the whole value must match) and MaxLength. Throws with
 * CloudFormation's reason when it would refuse the launch.
 */
export function resolveParameters(template: Json, given: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(given)) if (!(name in template.Parameters)) throw new Error(`unknown parameter ${name}`);
  for (const [name, p] of Object.entries(template.Parameters as Record<string, Json>)) {
    const v = given[name] ?? p.Default;
    if (v === undefined) throw new Error(`Parameters: [${name}] must have values`);
    const s = String(v);
    if (p.AllowedValues && !(p.AllowedValues as Json[]).map(String).includes(s)) throw new Error(`${name}: ${s} is not an allowed value`);
    if (p.AllowedPattern && !new RegExp(`^(?:${p.AllowedPattern})$`).test(s)) throw new Error(`${name}: ${s} does not match ${p.AllowedPattern}`);
    if (p.MaxLength !== undefined && s.length > Number(p.MaxLength)) throw new Error(`${name}: longer than ${p.MaxLength}`);
    out[name] = s;
  }
  return out;
}
