"""Sans-IO pieces of the POP3 client: no sockets, no printing, only bytes in and values out."""
