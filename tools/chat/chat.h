/*  tools/chat/chat.h — `parley chat`: the terminal chat, a client of the
 *  node's local API like every other one.
 */
#ifndef PARLEY_TOOLS_CHAT_CHAT_H
#define PARLEY_TOOLS_CHAT_CHAT_H

/*  Runs the chat against the node of home until the person quits; argv
 *  holds the words after `chat`. Returns the process's exit code (0, 1 a
 *  failure, 2 usage, 3 no node). */
int chat_run(const char *home, int argc, char **argv);

#endif
