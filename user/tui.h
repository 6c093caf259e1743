/* SPDX-License-Identifier: GPL-2.0 */
/* The live, full-screen table (ncurses). */
#ifndef MT_TUI_H
#define MT_TUI_H

#include <signal.h>

struct app;
struct ring_buffer;

/* tui__run() could not open the terminal: run the batch view instead. */
#define TUI_FALLBACK	1

/*
 * Run the live view in the main loop (app__run) until 'q', a signal
 * (app->exiting set), the command's exit or -n refreshes.  Restores the terminal on every way out.
 *
 * Returns 0 on a normal exit, a negative errno on a hard error (the
 * message is already printed), or TUI_FALLBACK (1) when no usable
 * terminal could be opened (TERM unset or "dumb", no cursor addressing,
 * no tty for input): the reason is printed and nothing was drawn, so the
 * caller should run the batch view instead.
 */
int tui__run(struct app *app, struct ring_buffer *rb);

#endif /* MT_TUI_H */
