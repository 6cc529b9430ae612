/* The prompt agent's built-in system prompt (English; spec 07 §1). */
#ifndef HD_AGENT_SYSTEM_PROMPT_H
#define HD_AGENT_SYSTEM_PROMPT_H

/* NUL-terminated, static. */
const char *hd_refine_system_prompt(void);

#endif
