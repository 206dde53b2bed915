/* err.c - text for the error table in err.h. */
#include "err.h"

const char *tb_strerror(int err)
{
	switch (err) {
	case TB_OK: return "success";
#define TB_ERR_MSG(name, val, msg) case name: return msg;
	TB_ERRORS(TB_ERR_MSG)
#undef TB_ERR_MSG
	}
	return "unknown error";
}

const char *tb_errname(int err)
{
	switch (err) {
	case TB_OK: return "TB_OK";
#define TB_ERR_NAME(name, val, msg) case name: return #name;
	TB_ERRORS(TB_ERR_NAME)
#undef TB_ERR_NAME
	}
	return "TB_E_UNKNOWN";
}
