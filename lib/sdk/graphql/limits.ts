/**
 * What a GraphQL request may ask for on the public port. Each limit answers a hostile query before it costs
 * anything: the token count while parsing (graphql-js's own maxTokens), depth, aliases and directives while
 * validating (graphql-armor's rules), and the cost with list sizes multiplied in just before execution
 * (graphql-query-complexity, which needs the variables).
 * Fragment cycles are refused by graphql-js's own validation (NoFragmentCyclesRule).
 */
import { GraphQLError, getNullableType, isListType, Kind, parse, visit } from "graphql";
import type { DocumentNode, ValidationContext } from "graphql";
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

/** Names of the variables a document passes as a page size (`first: $n`): the only ones its cost depends on. */
function pageSizeVariables(document: DocumentNode): string[] {
  const names = new Set<string>();
  visit(document, {
    Argument(node) {
      if (node.name.value === "first" && node.value.kind === Kind.VARIABLE) names.add(node.value.name.value);
    },
  });
  return [...names].sort();
}

/** The outcome of costing one operation: its cost, or why it could not be costed. */
type Costing = { cost: number } | { error: string };

/**
 * Refuses an operation whose cost (with the request's variables) is over `maxCost`, before it runs. The cost of a
 * document depends only on it, the operation chosen and its page-size variables, so it is computed once per such
 * combination (Yoga hands the same parsed document for the same text) and looked up afterwards.
 */
export function costLimit(schema: GraphQLSchema, { maxCost, defaultListSize, maxNodes }: GraphQLLimits): Plugin {
  const estimators = [listAwareEstimator(defaultListSize)];
  const costed = new WeakMap<DocumentNode, { variables: string[]; costs: Map<string, Costing> }>();
  const MAX_KEYS_PER_DOCUMENT = 100;
  function costing(document: DocumentNode, operationName: string | undefined, variables: Record<string, unknown>): Costing {
    let entry = costed.get(document);
    if (!entry) {
      entry = { variables: pageSizeVariables(document), costs: new Map() };
      costed.set(document, entry);
    }
    const key = JSON.stringify([operationName ?? null, ...entry.variables.map((name) => variables[name] ?? null)]);
    const known = entry.costs.get(key);
    if (known) return known;
    let result: Costing;
    try {
      result = { cost: getComplexity({ schema, query: document, variables, operationName, estimators, maxQueryNodes: maxNodes }) };
    } catch (err) {
      result = { error: (err as Error).message };
    }
    if (entry.costs.size >= MAX_KEYS_PER_DOCUMENT) entry.costs.clear(); // page sizes sent by a client: bounded
    entry.costs.set(key, result);
    return result;
  }
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const result = costing(args.document, args.operationName ?? undefined, (args.variableValues ?? {}) as Record<string, unknown>);
      if ("error" in result) {
        setResultAndStopExecution({ errors: [refused("query_too_complex", result.error)] });
      } else if (result.cost > maxCost) {
        setResultAndStopExecution({
          errors: [
            refused(
              "query_too_costly",
              `This query would cost ${result.cost}; the limit is ${maxCost}. Ask for smaller pages (first) or fewer nested lists`,
            ),
          ],
        });
      }
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
