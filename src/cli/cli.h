/* The `hidream` command-line tool: one file per subcommand, dispatched from main.c.
 * Every subcommand returns the process exit status, from the one table in exit_codes.h (0 on
 * success, 1 on a failed check, 2 on bad usage or input with a one-line message on stderr, 3
 * when an output cannot be written, 4 when the computation fails). */
#ifndef HD_CLI_H
#define HD_CLI_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_check_tokenizer(int argc, char **argv);
int cmd_check_golden(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_shapes(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_refine(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif
