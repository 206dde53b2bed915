/* phone.c - `tapbridge phone`: the phone (the patent's communication unit 20) as a
 * command: flags and profile, then commands from argv, a script or an interactive
 * terminal, each run to its end by io/phone_net over the core in src/phone.
 * What stays true: the exit status is 0 only when the session started and every
 * command succeeded; every failure leaves a "phone: error: ..." line on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "io/phone_net.h"
#include "lib/err.h"

#define LINE_MAX_LEN 512

struct phone_opts {
	const char *server, *pin, *profile, *link, *script, *wait_relay, *until, *fault;
	int trace, stats, help;
	char prof_server[300], prof_pin[300];
};

static void phone_usage(FILE *f)
{
	fprintf(f,
		"usage: tapbridge phone (--server HOST:PORT --pin SHA256:HEX | --profile FILE)\n"
		"         --link PATH [--script FILE] [--wait-relay SECONDS] [--until-notice PREFIX]\n"
		"         [--fault flip-relay-up=N|flip-relay-down=N|drop-relay-after=N[,...]]\n"
		"         [--trace] [--stats] [COMMAND [; COMMAND ...]]\n"
		"commands: menu | use N | permit N | topup N | select N | arm N | balance |\n"
		"          history [N] | lock | wait-notice [PREFIX] [SECONDS] |\n"
		"          serve SECONDS [PREFIX] | sleep MS | ping [N] | quit\n"
		"profile lines: `server HOST:PORT`, `fingerprint SHA256:HEX`; see docs/phone.md\n");
}

/* `server HOST:PORT` and `fingerprint SHA256:...` lines, '#' comments. 0 or -1. */
static int phone_profile(struct phone_opts *o)
{
	FILE *f = fopen(o->profile, "r");
	char line[LINE_MAX_LEN];
	unsigned no = 0;
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "tapbridge phone: cannot read the profile %s\n", o->profile);
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		char key[32], val[300];

		no++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[strspn(line, " \t")] == '#' || line[strspn(line, " \t")] == '\0')
			continue;
		if (sscanf(line, " %31s %299s", key, val) != 2) {
			rc = -1;
		} else if (strcmp(key, "server") == 0) {
			snprintf(o->prof_server, sizeof(o->prof_server), "%s", val);
		} else if (strcmp(key, "fingerprint") == 0) {
			snprintf(o->prof_pin, sizeof(o->prof_pin), "%s", val);
		} else {
			rc = -1;
		}
		if (rc != 0)
			fprintf(stderr, "tapbridge phone: %s line %u: want `server HOST:PORT` or "
					"`fingerprint SHA256:HEX`\n", o->profile, no);
	}
	fclose(f);
	if (o->server == NULL && o->prof_server[0] != '\0')
		o->server = o->prof_server;
	if (o->pin == NULL && o->prof_pin[0] != '\0')
		o->pin = o->prof_pin;
	return rc;
}

/* Flags first; the first word that is not a flag starts the commands (*first). */
static int phone_parse(int argc, char **argv, struct phone_opts *o, int *first)
{
	const struct arg_opt opts[] = {
		{ "--server", &o->server, NULL },     { "--pin", &o->pin, NULL },
		{ "--profile", &o->profile, NULL },   { "--link", &o->link, NULL },
		{ "--script", &o->script, NULL },     { "--wait-relay", &o->wait_relay, NULL },
		{ "--until-notice", &o->until, NULL }, { "--trace", NULL, &o->trace },
		{ "--fault", &o->fault, NULL },
		{ "--stats", NULL, &o->stats },       { "--help", NULL, &o->help },
		{ "-h", NULL, &o->help },
	};
	const size_t nopts = sizeof(opts) / sizeof(opts[0]);
	int i = 1;

	while (i < argc && strncmp(argv[i], "-", 1) == 0) {
		int takes = 0;

		for (size_t k = 0; k < nopts; k++)
			if (strcmp(argv[i], opts[k].name) == 0)
				takes = opts[k].val != NULL;
		i += 1 + (takes && i + 1 < argc);
	}
	*first = i;
	return args_parse("phone", i, argv, opts, nopts);
}

/* Runs one command line; 0 when it succeeded. */
static int phone_one(struct phone_net *n, const char *line)
{
	struct ph_cmd c;
	char why[200];

	if (ph_cmd_parse(line, &c, why, sizeof(why)) != 0) {
		printf("phone: error: '%s': %s\n", line, why);
		fflush(stdout);
		return -1;
	}
	return phone_net_run(n, &c) == 0 ? 0 : -1;
}

static int blank(const char *s)
{
	s += strspn(s, " \t\r\n");
	return *s == '\0' || *s == '#';
}

/* argv words joined, then split at ';'. Counts failures. */
static int phone_argv_cmds(struct phone_net *n, int argc, char **argv, int *quit)
{
	char all[4096];
	size_t len = 0;
	int failed = 0;

	for (int i = 0; i < argc; i++) {
		size_t k = strlen(argv[i]);

		if (len + k + 2 > sizeof(all)) {
			printf("phone: error: the commands are too long\n");
			return 1;
		}
		memcpy(all + len, argv[i], k);
		len += k;
		all[len++] = ' ';
	}
	all[len] = '\0';
	for (char *s = all, *semi; s != NULL && !*quit; s = semi != NULL ? semi + 1 : NULL) {
		if ((semi = strchr(s, ';')) != NULL)
			*semi = '\0';
		if (blank(s))
			continue;
		failed += phone_one(n, s) != 0;
		*quit = strncmp(s + strspn(s, " "), "quit", 4) == 0;
	}
	return failed;
}

static int phone_file_cmds(struct phone_net *n, FILE *f, int interactive, int *quit)
{
	char line[LINE_MAX_LEN];
	struct stat st;
	int failed = 0, stream = 0;

	/* Commands that come over a pipe, a fifo or a terminal may come late: the phone keeps
	 * pumping (relays, server frames) while it waits for them, and reads them unbuffered
	 * so that no line hides in stdio's buffer while the fd looks idle. */
	if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
		stream = 1;
		setvbuf(f, NULL, _IONBF, 0);
	}
	for (;;) {
		if (interactive) {
			fprintf(stderr, "phone> ");
			fflush(stderr);
		}
		if ((interactive || stream) && phone_net_wait_fd(n, fileno(f)) != 0)
			break;
		if (fgets(line, sizeof(line), f) == NULL)
			break;
		line[strcspn(line, "\r\n")] = '\0';
		if (blank(line))
			continue;
		failed += phone_one(n, line) != 0;
		if (strncmp(line + strspn(line, " \t"), "quit", 4) == 0) {
			*quit = 1;
			break;
		}
	}
	return failed;
}

/* --fault KIND=N[,KIND=N...]: the test seams of docs/phone.md. 0 or -1. */
static int phone_faults(const char *spec, struct ph_config *ph)
{
	static const char *const kinds[] = { "flip-relay-up", "flip-relay-down", "drop-relay-after" };
	uint32_t *const slots[] = { &ph->fault_flip_up, &ph->fault_flip_down, &ph->fault_drop_after };
	char buf[128], *save = NULL;

	if (strlen(spec) >= sizeof(buf))
		return -1;
	strcpy(buf, spec);
	for (char *it = strtok_r(buf, ",", &save); it != NULL; it = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(it, '=');
		size_t k = 0;

		if (eq == NULL)
			return -1;
		*eq = '\0';
		while (k < 3 && strcmp(it, kinds[k]) != 0)
			k++;
		if (k == 3 || args_u32(eq + 1, 1, 1000000, slots[k]) != 0)
			return -1;
	}
	return 0;
}

static int phone_config(struct phone_opts *o, struct phone_net_config *cfg)
{
	uint32_t secs = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (o->server == NULL || o->pin == NULL || o->link == NULL) {
		fprintf(stderr, "tapbridge phone: needs --server and --pin (or --profile) and --link\n");
		return -1;
	}
	if (tls_fpr_parse(o->pin, cfg->pin) != 0) {
		fprintf(stderr, "tapbridge phone: the pin is not a SHA-256 fingerprint: %s\n", o->pin);
		return -1;
	}
	if (o->wait_relay != NULL && args_u32(o->wait_relay, 1, 3600, &secs) != 0) {
		fprintf(stderr, "tapbridge phone: --wait-relay wants 1..3600 seconds\n");
		return -1;
	}
	cfg->server = o->server;
	cfg->link = o->link;
	cfg->out = stdout;
	cfg->ph.trace = o->trace;
	cfg->ph.relay_wait_ms = secs * 1000u;
	cfg->ph.until_notice = o->until;
	if (o->fault != NULL && phone_faults(o->fault, &cfg->ph) != 0) {
		fprintf(stderr, "tapbridge phone: --fault wants flip-relay-up=N, flip-relay-down=N "
				"or drop-relay-after=N (N >= 1), comma-separated\n");
		return -1;
	}
	return 0;
}

int cmd_phone(int argc, char **argv)
{
	struct phone_opts o;
	struct phone_net_config cfg;
	struct phone_net *n = NULL;
	FILE *script = NULL;
	int first = 1, failed = 0, quit = 0;

	memset(&o, 0, sizeof(o));
	if (phone_parse(argc, argv, &o, &first) != 0) {
		phone_usage(stderr);
		return 2;
	}
	if (o.help) {
		phone_usage(stdout);
		return 0;
	}
	if ((o.profile != NULL && phone_profile(&o) != 0) || phone_config(&o, &cfg) != 0)
		return 2;
	if (o.script != NULL && (script = fopen(o.script, "r")) == NULL) {
		fprintf(stderr, "tapbridge phone: cannot read the script %s\n", o.script);
		return 2;
	}
	if (phone_net_open(&cfg, &n) != 0) {
		if (script != NULL)
			fclose(script);
		return 1;
	}
	if (script != NULL)
		failed += phone_file_cmds(n, script, 0, &quit);
	if (!quit && first < argc)
		failed += phone_argv_cmds(n, argc - first, argv + first, &quit);
	if (script == NULL && first >= argc && isatty(0))
		failed += phone_file_cmds(n, stdin, 1, &quit);
	if (script != NULL)
		fclose(script);
	if (o.stats)
		printf("phone: stats relay-rtts=%llu\n", (unsigned long long)phone_net_relay_rtts(n));
	fflush(stdout);
	phone_net_free(n);
	return failed == 0 ? 0 : 1;
}
