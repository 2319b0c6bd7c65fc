/*  tests/chat_selftest.c — runs the terminal chat's self-tests: the text
 *  work (tools/chat/text.c) and the conversations (tools/chat/conv.c),
 *  under a UTF-8 locale, as the chat runs. No terminal and no node.
 *
 *    chat_selftest [-v] [text|conv]
 */
#include <locale.h>
#include <stdio.h>

#include "../tools/chat/chat_int.h"
#include "../tools/chat/text.h"
#include "selftest_main.h"

int
main(int argc, char **argv)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8")) {
        fprintf(stderr, "chat_selftest: no C.UTF-8 locale\n");
        return 1;
    }
    static const selftest_t tests[] = {
        { "text", text_test },
        { "conv", conv_test },
    };
    return selftest_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
