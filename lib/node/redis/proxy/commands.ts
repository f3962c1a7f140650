/** Which commands the proxy refuses: the policy is shared with the Redis object in workerd (lib/shared/redis-commands.ts). */
export { commandName, refusal } from "../../../shared/redis-commands.ts";
