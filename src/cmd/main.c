/* main.c - the tapbridge binary: one dispatch table of sub-commands.
 * Parties that are not built yet are named, so nobody mistakes a typo for them. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

struct sub {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
};

static const struct sub subs[] = {
	{ "tool", cmd_tool, "trace tools: scp03 replay, apdu decode, tlv decode" },
	{ "demo", cmd_demo, "the main job: runs what exists and says what does not" },
	{ "se", cmd_se, "the secure element: contactless (vpcd, socket) and the phone link" },
	{ "admin", cmd_admin, "personalisation: se-init, se-keys, se-config, se-info" },
	{ "sam", cmd_sam, "the only holder of master keys: key file, PKCS#11 KEK, unix socket" },
	{ "server", cmd_server, "the service server: TLS 1.3 phone sessions and the HTTP layer" },
	{ "gateway", cmd_gateway, "the gateway: relays phone lines to the server, emulated delay/loss" },
	{ "phone", cmd_phone, "the phone: its se's link, the server session, relays, a scripted screen" },
	{ "reader", cmd_reader, "the shop terminal: pay, gate, id, checkout; relays through the se" },
	{ "bench", cmd_bench, "benchmarks against references measured in the same run" },
};

/* Parties of the architecture that later work adds. */
static const char *const planned[] = { "reader" };

static void usage(FILE *f)
{
	fprintf(f, "usage: tapbridge COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].what);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	}
	for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++) {
		if (strcmp(argv[1], planned[i]) == 0) {
			fprintf(stderr, "tapbridge: '%s' is not built yet\n", argv[1]);
			return 2;
		}
	}
	fprintf(stderr, "tapbridge: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
