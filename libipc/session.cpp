// libipc/session.cpp - the ipcd client (ipc/semaphore.hpp). Not yet implemented.
