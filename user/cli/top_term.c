// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch top` on a terminal (ncurses: a title, the column header, one row per
 * upstream, a status line; keys to sort, filter, scroll and quit) or, when stdin or stdout
 * is no terminal, as plain blocks of lines, one per interval. Samples are taken on a
 * fixed cadence of the interval; SIGINT and SIGTERM end either loop cleanly, the terminal
 * restored. Everything shown comes from the pure top.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curses.h>
#include "cli/top_term.h"
#include "lib/clock.h"
#include "lib/text.h"

#define PLAIN_WIDTH 79	/* plain mode's lines: the CLI's usual width */
#define LINE_MAX_W  512 /* wider terminals get lines of this many columns */
#define FILTER_MAX  128
#define ESC_KEY	    27
#define CTRL_L	    12
#define HELP_TEXT   "q quit  </> sort  i invert  t totals/rates  / filter  arrows scroll"

static volatile sig_atomic_t top_stop;

static void on_stop(int sig)
{
	(void)sig;
	top_stop = 1;
}

/* SIGINT and SIGTERM set top_stop; no SA_RESTART, so that they cut waits short. */
static void catch_stop_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

struct top_state {
	const struct kw_top_opts *o;
	struct kw_top_sample cur; /* the last good sample, rates against the one before */
	int have_cur;
	struct kw_top_order order;
	struct kw_globs globs;
	char filter[FILTER_MAX]; /* the filter's text; "" for none */
	const struct kw_top_row **sel;
	size_t nsel;
	char error[512]; /* why the last sample failed; "" when it did not */
};

static int state_init(struct top_state *st, const struct kw_top_opts *o)
{
	memset(st, 0, sizeof(*st));
	st->o = o;
	st->order = o->order;
	kw_globs_init(&st->globs);
	if (!o->filter)
		return 0;
	snprintf(st->filter, sizeof(st->filter), "%s", o->filter);
	return kw_globs_add(&st->globs, o->filter);
}

static void state_free(struct top_state *st)
{
	kw_top_sample_free(&st->cur);
	kw_globs_free(&st->globs);
	free(st->sel);
}

static void document_error(struct top_state *st, int err)
{
	if (err == -EPROTONOSUPPORT)
		snprintf(st->error, sizeof(st->error),
			 "the agent speaks another API version; update keepwatch");
	else
		snprintf(st->error, sizeof(st->error), "unexpected answer from the agent: %s",
			 strerror(-err));
}

/* Fetch and read a sample, rates against the last one; 0, or -1 with st->error set. */
static int take_sample(struct top_state *st)
{
	struct kw_top_sample next;
	const struct kw_top_row **sel;
	json_t *doc = NULL;
	int err;

	st->error[0] = '\0';
	if (st->o->fetch(st->o->ctx, &doc, st->error, sizeof(st->error))) {
		if (!st->error[0])
			snprintf(st->error, sizeof(st->error), "the agent did not answer");
		return -1;
	}
	err = kw_top_sample_from_json(doc, kw_now(), &next);
	json_decref(doc);
	if (err) {
		document_error(st, err);
		return -1;
	}
	sel = realloc(st->sel, (next.n ?: 1) * sizeof(*sel));
	if (!sel) {
		kw_top_sample_free(&next);
		snprintf(st->error, sizeof(st->error), "out of memory");
		return -1;
	}
	st->sel = sel;
	kw_top_rates(&next, st->have_cur ? &st->cur : NULL);
	kw_top_sample_free(&st->cur);
	st->cur = next;
	st->have_cur = 1;
	return 0;
}

static void select_rows(struct top_state *st)
{
	st->nsel = st->have_cur ? kw_top_select(&st->cur, &st->globs, &st->order, st->sel) : 0;
}

static void status_of(const struct top_state *st, struct kw_top_status *s)
{
	memset(s, 0, sizeof(*s));
	s->uptime = st->cur.uptime;
	s->window = st->cur.n ? st->cur.rows[0].window : 0;
	s->shown = st->nsel;
	s->total = st->cur.n;
	s->order = st->order;
	s->filter = st->filter[0] ? st->filter : NULL;
}

/* Sleep until the CLOCK_MONOTONIC deadline; 0, or -1 when a stop signal came. */
static int sleep_until(double deadline)
{
	struct timespec ts = { .tv_sec = (time_t)deadline };

	ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (!top_stop) {
		if (!clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
			return 0;
	}
	return -1;
}

/* The next sample's time: the fixed cadence, or now + interval once behind it. */
static double next_deadline(double deadline, double interval)
{
	double now = kw_now();

	deadline += interval;
	return deadline > now ? deadline : now + interval;
}

/* ---- plain ---- */

static void plain_line(char *line)
{
	puts(kw_text_safe(line, 0));
}

static void plain_block(struct top_state *st)
{
	struct kw_top_layout l;
	struct kw_top_status s;
	char line[LINE_MAX_W];
	size_t i;

	select_rows(st);
	status_of(st, &s);
	if (!kw_top_format_title(&s, PLAIN_WIDTH, line, sizeof(line)))
		plain_line(line);
	kw_top_layout(st->sel, st->nsel, PLAIN_WIDTH, &l);
	if (!kw_top_format_header(&l, st->order.totals, line, sizeof(line)))
		plain_line(line);
	for (i = 0; i < st->nsel; i++)
		if (!kw_top_format_row(st->sel[i], &l, st->order.totals, line, sizeof(line)))
			plain_line(line);
	putchar('\n');
}

int kw_top_run_plain(const struct kw_top_opts *o)
{
	struct top_state st;
	double deadline;
	__u32 done = 0;
	int ret = 1;

	catch_stop_signals();
	if (state_init(&st, o)) {
		fprintf(stderr, "keepwatch: bad filter '%s'\n", o->filter);
		goto out;
	}
	deadline = kw_now();
	if (take_sample(&st))
		goto fail;
	while (!o->iterations || done < o->iterations) {
		deadline = next_deadline(deadline, o->interval);
		if (sleep_until(deadline))
			break;
		if (take_sample(&st))
			goto fail;
		plain_block(&st);
		done++;
		if (fflush(stdout) || ferror(stdout))
			goto out; /* the caller reports it */
	}
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "keepwatch: %s\n", kw_text_safe(st.error, 0));
out:
	state_free(&st);
	return ret;
}

/* ---- screen ---- */

struct screen {
	struct top_state st;
	size_t scroll; /* first row shown */
	int editing;   /* typing a filter after '/' */
	char edit[FILTER_MAX];
	char note[256]; /* a message for the status line until the next key */
};

/* Rows of upstreams the screen has room for: all but the title, header and status. */
static int body_lines(void)
{
	return LINES > 3 ? LINES - 3 : 0;
}

static void put_line(int y, const char *text, attr_t attr)
{
	char line[LINE_MAX_W];

	snprintf(line, sizeof(line), "%s", text);
	kw_text_safe(line, 0);
	attrset(attr);
	/* the last column stays empty: writing there would scroll the bottom line */
	mvaddnstr(y, 0, line, COLS > 1 ? COLS - 1 : 0);
	attrset(A_NORMAL);
}

static void draw_status(const struct screen *sc)
{
	char line[LINE_MAX_W + sizeof(sc->st.error)];

	if (sc->editing) {
		snprintf(line, sizeof(line), "filter (glob[,glob], Enter applies, Esc cancels): %s",
			 sc->edit);
		put_line(LINES - 1, line, A_NORMAL);
	} else if (sc->st.error[0]) {
		snprintf(line, sizeof(line), "error (retrying): %s", sc->st.error);
		put_line(LINES - 1, line, A_BOLD);
	} else if (sc->note[0]) {
		put_line(LINES - 1, sc->note, A_BOLD);
	} else {
		put_line(LINES - 1, HELP_TEXT, A_NORMAL);
	}
}

static void draw(struct screen *sc)
{
	struct top_state *st = &sc->st;
	int width = COLS < LINE_MAX_W ? COLS - 1 : LINE_MAX_W - 1, body = body_lines(), y;
	struct kw_top_layout l;
	struct kw_top_status s;
	char line[LINE_MAX_W];
	size_t i;

	select_rows(st);
	erase();
	status_of(st, &s);
	if (!st->have_cur)
		put_line(0, "no answer from the agent yet", A_BOLD);
	else if (!kw_top_format_title(&s, width, line, sizeof(line)))
		put_line(0, line, A_BOLD);
	kw_top_layout(st->sel, st->nsel, width, &l);
	if (!kw_top_format_header(&l, st->order.totals, line, sizeof(line))) {
		put_line(1, line, A_REVERSE);
		/* the sort column's header, not reversed: it stands out */
		if (l.x[st->order.col] < width)
			mvchgat(1, l.x[st->order.col], l.w[st->order.col], A_BOLD, 0, NULL);
	}
	if (sc->scroll + body > st->nsel)
		sc->scroll = st->nsel > (size_t)body ? st->nsel - body : 0;
	for (i = sc->scroll, y = 2; i < st->nsel && y < 2 + body; i++, y++)
		if (!kw_top_format_row(st->sel[i], &l, st->order.totals, line, sizeof(line)))
			put_line(y, line, A_NORMAL);
	if (!st->have_cur && !st->error[0])
		put_line(2, "waiting for the agent...", A_NORMAL);
	else if (st->have_cur && !st->nsel)
		put_line(2, st->cur.n ? "no upstream matches the filter" : "no upstreams yet",
			 A_NORMAL);
	draw_status(sc);
	refresh();
}

static void apply_filter(struct screen *sc)
{
	struct top_state *st = &sc->st;
	struct kw_globs g;
	int err;

	kw_globs_init(&g);
	err = sc->edit[0] ? kw_globs_add(&g, sc->edit) : 0;
	if (err) {
		kw_globs_free(&g);
		snprintf(sc->note, sizeof(sc->note), "filter '%s': %s", sc->edit,
			 err == -EINVAL ? "an empty glob" : strerror(-err));
		return;
	}
	kw_globs_free(&st->globs);
	st->globs = g;
	snprintf(st->filter, sizeof(st->filter), "%s", sc->edit);
	sc->scroll = 0;
}

static void edit_key(struct screen *sc, int ch)
{
	size_t n = strlen(sc->edit);

	switch (ch) {
	case '\n':
	case '\r':
	case KEY_ENTER:
		sc->editing = 0;
		apply_filter(sc);
		break;
	case ESC_KEY:
		sc->editing = 0;
		break;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (n)
			sc->edit[n - 1] = '\0';
		break;
	default:
		if (ch >= 32 && ch < 127 && n + 1 < sizeof(sc->edit)) {
			sc->edit[n] = (char)ch;
			sc->edit[n + 1] = '\0';
		}
	}
}

/* One key; returns 1 to quit. */
static int screen_key(struct screen *sc, int ch)
{
	struct kw_top_order *o = &sc->st.order;
	size_t page = body_lines() ?: 1;

	if (sc->editing) {
		edit_key(sc, ch);
		return 0;
	}
	sc->note[0] = '\0';
	switch (ch) {
	case 'q':
	case 'Q':
		return 1;
	case '<':
	case KEY_LEFT:
		o->col = (o->col + KW_TOP_NCOLS - 1) % KW_TOP_NCOLS;
		break;
	case '>':
	case KEY_RIGHT:
		o->col = (o->col + 1) % KW_TOP_NCOLS;
		break;
	case 'i':
		o->reverse = !o->reverse;
		break;
	case 't':
		o->totals = !o->totals;
		break;
	case '/':
		sc->editing = 1;
		snprintf(sc->edit, sizeof(sc->edit), "%s", sc->st.filter);
		break;
	case KEY_UP:
	case 'k':
		sc->scroll -= sc->scroll > 0;
		break;
	case KEY_DOWN:
	case 'j':
		sc->scroll++; /* draw() keeps it in range */
		break;
	case KEY_PPAGE:
		sc->scroll = sc->scroll > page ? sc->scroll - page : 0;
		break;
	case KEY_NPAGE:
	case ' ':
		sc->scroll += page;
		break;
	case KEY_HOME:
		sc->scroll = 0;
		break;
	case KEY_END:
		sc->scroll = (size_t)-1 / 2;
		break;
	case CTRL_L:
		clearok(curscr, TRUE);
		break;
	case KEY_RESIZE:
		break;
	default:
		snprintf(sc->note, sizeof(sc->note), "unknown key; " HELP_TEXT);
	}
	return 0;
}

/* Start curses on the terminal of stdout; NULL if it cannot be used. */
static SCREEN *screen_start(void)
{
	SCREEN *s = newterm(NULL, stdout, stdin);

	if (!s)
		return NULL;
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25); /* Esc alone cancels the filter at once */
	curs_set(0);	  /* fails on terminals without: harmless */
	return s;
}

/* Wait for a key until the deadline: the key, or ERR when the time came (or a signal). */
static int key_until(double deadline)
{
	double left = deadline - kw_now();
	int ms = left > 0 ? (int)(left * 1000) + 1 : 0;

	timeout(ms);
	return getch();
}

int kw_top_run_screen(const struct kw_top_opts *o)
{
	struct screen sc = { 0 };
	double next;
	__u32 done = 0;
	SCREEN *scr;
	int ch;

	catch_stop_signals();
	if (state_init(&sc.st, o)) {
		fprintf(stderr, "keepwatch: bad filter '%s'\n", o->filter);
		state_free(&sc.st);
		return 1;
	}
	scr = screen_start();
	if (!scr) {
		fprintf(stderr,
			"keepwatch: cannot use the terminal: TERM='%s' is not in the terminfo "
			"database; -p prints plain blocks\n",
			getenv("TERM") ?: "");
		state_free(&sc.st);
		return 1;
	}
	take_sample(&sc.st);
	draw(&sc);
	next = kw_now() + o->interval;
	while (!top_stop && (!o->iterations || done < o->iterations)) {
		ch = key_until(next);
		if (top_stop)
			break;
		if (ch != ERR) {
			if (screen_key(&sc, ch))
				break;
			draw(&sc);
			continue;
		}
		if (kw_now() < next)
			continue; /* woken early */
		take_sample(&sc.st);
		done++;
		draw(&sc);
		next = next_deadline(next, o->interval);
	}
	endwin();
	delscreen(scr);
	state_free(&sc.st);
	return 0;
}
