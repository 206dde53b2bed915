/* ph_screen.c - the phone core's screen text and action queue: lines are built piece by
 * piece into ph->screen, actions appended to ph->act. What stays true: a line that does
 * not fit is dropped whole (and the sticky error says so), never cut; no stdio in a core,
 * so numbers and times are formatted here. */
#include <string.h>

#include "err.h"
#include "ph_int.h"

int ph_act_push(struct ph *ph, const struct ph_act *a)
{
	if (ph->act_n >= PH_ACT_MAX) {
		ph->act_err = TB_E_NOSPACE;
		return TB_E_NOSPACE;
	}
	ph->act[ph->act_n++] = *a;
	return 0;
}

int ph_next_action(struct ph *ph, struct ph_act *a)
{
	if (ph->act_next >= ph->act_n) {
		ph->act_n = ph->act_next = 0;
		return 0;
	}
	*a = ph->act[ph->act_next++];
	if (ph->act_next == ph->act_n)
		ph->act_n = ph->act_next = 0;
	return 1;
}

const char *ph_screen_take(struct ph *ph, size_t *n)
{
	*n = ph->screen_n;
	ph->screen_n = 0;
	return ph->screen;
}

int ph_error(const struct ph *ph)
{
	return ph->act_err;
}

/* ---- a line under construction ---- */

void ln_init(struct ph_line *l)
{
	l->n = 0;
	l->over = 0;
}

void ln_mem(struct ph_line *l, const char *s, size_t n)
{
	if (l->over || n > sizeof(l->b) - l->n) {
		l->over = 1;
		return;
	}
	memcpy(l->b + l->n, s, n);
	l->n += n;
}

void ln_str(struct ph_line *l, const char *s)
{
	ln_mem(l, s, strlen(s));
}

void ln_u64(struct ph_line *l, uint64_t v)
{
	char d[20];
	size_t k = sizeof(d);

	do {
		d[--k] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v > 0);
	ln_mem(l, d + k, sizeof(d) - k);
}

void ln_i64(struct ph_line *l, int64_t v)
{
	if (v < 0) {
		ln_str(l, "-");
		ln_u64(l, (uint64_t)0 - (uint64_t)v);
		return;
	}
	ln_u64(l, (uint64_t)v);
}

void ln_hex(struct ph_line *l, uint64_t v, unsigned digits)
{
	static const char hx[] = "0123456789ABCDEF";
	char d[16];

	if (digits > sizeof(d))
		digits = sizeof(d);
	for (unsigned i = 0; i < digits; i++)
		d[i] = hx[(v >> (4u * (digits - 1u - i))) & 0xFu];
	ln_mem(l, d, digits);
}

static void ln_2(struct ph_line *l, unsigned v)
{
	char d[2] = { (char)('0' + v / 10u % 10u), (char)('0' + v % 10u) };

	ln_mem(l, d, 2);
}

/* Seconds since 1970 as 2024-05-01T12:00:00Z (proleptic Gregorian, UTC): the civil
 * date from a day count, after Howard Hinnant's days_from_civil inverse. */
void ln_time(struct ph_line *l, int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t secs = t - days * 86400;
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);

	if (y < 0 || y > 9999) {
		ln_i64(l, t);
		return;
	}
	ln_u64(l, (uint64_t)y);
	ln_str(l, "-");
	ln_2(l, (unsigned)m);
	ln_str(l, "-");
	ln_2(l, (unsigned)d);
	ln_str(l, "T");
	ln_2(l, (unsigned)(secs / 3600));
	ln_str(l, ":");
	ln_2(l, (unsigned)(secs / 60 % 60));
	ln_str(l, ":");
	ln_2(l, (unsigned)(secs % 60));
	ln_str(l, "Z");
}

/* Ends the line and queues it for the screen. */
int ln_put(struct ph *ph, struct ph_line *l)
{
	if (l->over || l->n + 1 > PH_SCREEN_MAX - ph->screen_n) {
		ph->act_err = TB_E_NOSPACE;
		return TB_E_NOSPACE;
	}
	memcpy(ph->screen + ph->screen_n, l->b, l->n);
	ph->screen_n += l->n;
	ph->screen[ph->screen_n++] = '\n';
	return 0;
}

int ph_say(struct ph *ph, const char *a, const char *b)
{
	struct ph_line l;

	ln_init(&l);
	ln_str(&l, a);
	if (b != NULL)
		ln_str(&l, b);
	return ln_put(ph, &l);
}
