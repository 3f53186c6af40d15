import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Deepest nesting of an operation's variables: well above what any input the schema takes needs (a
 * flow's LIMITS.flowDepth levels, two each, around a job whose payload nests JSON_MAX_DEPTH: 88),
 * so that a payload too deep still gets its own, more precise refusal; well below where graphql-js's
 * coercion overflowed the stack (1 500 levels; 1 000 passed).
 */
export const VARIABLES_MAX_DEPTH = 256;

/**
 * Refuses variables nested deeper than VARIABLES_MAX_DEPTH before graphql-js coerces them, which it
 * does recursively: a `submitFlow` input nested 1 500 levels deep (117 KB, under the body limit)
 * overflowed the stack there, and the answer was "Maximum call stack size exceeded" coded as
 * BAD_USER_INPUT, on HTTP and graphql-ws alike.
 */
export function useVariablesDepthLimit(): Plugin {
  const check = (hook: CheckArgs) => {
    if (depthPasses(hook.args.variableValues, VARIABLES_MAX_DEPTH)) {
      hook.setResultAndStopExecution({
        errors: [
          new GraphQLError(`The variables are nested more than ${VARIABLES_MAX_DEPTH} levels deep.`, {
            extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
          }),
        ],
      });
    }
  };
  return { onExecute: check, onSubscribe: check };
}

type CheckArgs = {
  args: { variableValues?: unknown };
  setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
};

/** Whether `value` nests deeper than `max` levels of objects and arrays (walked without recursion). */
function depthPasses(value: unknown, max: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= max) return true;
    for (const inner of Object.values(current)) stack.push({ value: inner, depth: depth + 1 });
  }
  return false;
}
