/**
 * What a GraphQL request may ask for on the public port. Each limit answers a hostile query before it costs
 * anything: the token count while parsing (graphql-js's own maxTokens), depth, aliases and directives while
 * validating (graphql-armor's rules), and the cost with list sizes multiplied in just before execution
 * (graphql-query-complexity, which needs the variables).
 * Fragment cycles are refused by graphql-js's own validation (NoFragmentCyclesRule).
 */
import { GraphQLError, getNullableType, getOperationAST, getVariableValues, isListType, Kind, parse, visit } from "graphql";
import type { ArgumentNode, DirectiveNode, DocumentNode, OperationDefinitionNode, ValidationContext } from "graphql";
import type { GraphQLSchema } from "graphql";
import { getComplexity } from "graphql-query-complexity";
import type { ComplexityEstimator } from "graphql-query-complexity";
import type { Plugin } from "graphql-yoga";

export interface GraphQLLimits {
  /** Deepest selection (fields inside fields). */
  maxDepth: number;
  /** Aliases in one operation (an alias bomb asks one expensive field a thousand times). */
  maxAliases: number;
  /** Lexical tokens in a document: a bound on parsing work whatever the document holds. */
  maxTokens: number;
  /** Directives in one operation. */
  maxDirectives: number;
  /**
   * Cost of an operation: each field costs 1, and a list field costs its page size (`first`, else
   * `defaultListSize`) times what each item selects. `links(first: 100) { owner { links(first: 100) { code } } }`
   * costs 100 × (1 + 1 + 100 × 1) + 1.
   */
  maxCost: number;
  /** Page size assumed for a list field without `first`. */
  defaultListSize: number;
  /** Operations in one batched request (an array body); 1 turns batching off. */
  maxBatch: number;
  /** Fields visited while costing an operation (fragments spread many times multiply them). */
  maxNodes: number;
}

export const GRAPHQL_LIMITS: GraphQLLimits = {
  maxDepth: 8,
  maxAliases: 15,
  maxTokens: 2000,
  maxDirectives: 20,
  maxCost: 5000,
  defaultListSize: 20,
  maxBatch: 5,
  maxNodes: 2000,
};

/** A request the limits refuse: a GraphQL error with a stable code, answered 400 without running anything. */
export function refused(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/** Page size times the items' cost for list fields; 1 plus the children for the rest. */
const listAwareEstimator =
  (defaultListSize: number): ComplexityEstimator =>
  ({ field, args, childComplexity }) => {
    // Introspection (__schema, __type, __typename) is refused outside development; there it is GraphiQL's own.
    if (field.name.startsWith("__")) return 0;
    const type = getNullableType(field.type);
    if (!isListType(type)) return 1 + childComplexity;
    const first = typeof args.first === "number" && args.first > 0 ? args.first : defaultListSize;
    // A list of scalars costs its length; a list of objects its length times what each item selects.
    return 1 + first * Math.max(1, childComplexity);
  };

/**
 * Names of the variables an operation's cost can depend on: those passed as a page size (`first: $n`, what the
 * estimator reads) and those passed to a directive (`@skip(if: $s)`, `@include(if: $s)`: they decide what is costed).
 */
function costVariables(operation: OperationDefinitionNode, document: DocumentNode): string[] {
  const names = new Set<string>();
  const collect = {
    Argument(node: ArgumentNode) {
      if (node.name.value === "first" && node.value.kind === Kind.VARIABLE) names.add(node.value.name.value);
    },
    Directive(node: DirectiveNode) {
      for (const arg of node.arguments ?? []) if (arg.value.kind === Kind.VARIABLE) names.add(arg.value.name.value);
    },
  };
  visit(operation, collect);
  // Fragments the operation spreads are costed with it.
  for (const definition of document.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) visit(definition, collect);
  return [...names].sort();
}

/**
 * Refuses an operation whose cost (with the request's variables) is over `maxCost`, before it runs. An operation's
 * cost depends only on its document (Yoga hands the same parsed document for the same text), the operation chosen and
 * the coerced values of its cost variables (costVariables), so a computed cost is kept under that key and looked up
 * afterwards. Variables that do not coerce are left to execution, which refuses them before any resolver runs; a
 * failure is never kept.
 */
export function costLimit(schema: GraphQLSchema, { maxCost, defaultListSize, maxNodes }: GraphQLLimits): Plugin {
  const estimators = [listAwareEstimator(defaultListSize)];
  const costed = new WeakMap<OperationDefinitionNode, { variables: string[]; costs: Map<string, number> }>();
  const MAX_KEYS_PER_OPERATION = 100;
  const checkCost = (cost: number, stop: (result: { errors: GraphQLError[] }) => void) => {
    if (cost <= maxCost) return;
    stop({
      errors: [
        refused(
          "query_too_costly",
          `This query would cost ${cost}; the limit is ${maxCost}. Ask for smaller pages (first) or fewer nested lists`,
        ),
      ],
    });
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const operation = getOperationAST(args.document, args.operationName ?? undefined);
      if (!operation) return; // none or ambiguous: execution answers that
      let entry = costed.get(operation);
      if (!entry) {
        entry = { variables: costVariables(operation, args.document), costs: new Map() };
        costed.set(operation, entry);
      }
      // With no cost variables a kept cost holds whatever the variables: no coercion on that (common) path.
      const kept = entry.variables.length === 0 ? entry.costs.get("[]") : undefined;
      if (kept !== undefined) return checkCost(kept, setResultAndStopExecution);
      const coerced = getVariableValues(
        schema,
        operation.variableDefinitions ?? [],
        (args.variableValues ?? {}) as Record<string, unknown>,
      );
      if (coerced.errors) return; // execution answers these, running nothing
      const variables = coerced.coerced;
      const key = JSON.stringify(entry.variables.map((name) => (name in variables ? variables[name] : "(absent)")));
      let cost = entry.costs.get(key);
      if (cost === undefined) {
        try {
          cost = getComplexity({
            schema,
            query: args.document,
            variables,
            operationName: operation.name?.value,
            estimators,
            maxQueryNodes: maxNodes,
          });
        } catch (err) {
          // The node limit (a fragment spread too many times) is the client's; anything else is ours, and not shown.
          const theirs = err instanceof Error && err.name === "GraphQLError";
          if (!theirs) console.error("graphql: an operation could not be costed", err);
          setResultAndStopExecution({
            errors: [refused("query_too_complex", theirs ? err.message : "This operation could not be costed; simplify it")],
          });
          return;
        }
        if (entry.costs.size >= MAX_KEYS_PER_OPERATION) entry.costs.clear(); // values sent by clients: bounded
        entry.costs.set(key, cost);
      }
      checkCost(cost, setResultAndStopExecution);
    },
  };
}

/**
 * Parses with graphql-js's own token limit: a document past `maxTokens` stops parsing there (graphql-armor's
 * max-tokens plugin reaches into graphql's CommonJS parser, which would bundle a second copy of graphql).
 */
export function tokenLimit(maxTokens: number): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => parse(source, { ...options, maxTokens }));
    },
  };
}

/**
 * How a graphql-armor rule refuses: as a validation error with our code and a 400 (its default throws from inside
 * validation, which Yoga answers with 200 and no code), worded without armor's "Syntax Error:" prefix.
 */
export function armorRejects(code: string) {
  return {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        context?.reportError(refused(code, error.message.replace(/^Syntax Error: /, "")));
      },
    ],
  };
}
