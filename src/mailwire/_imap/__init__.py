"""Sans-IO pieces of the IMAP client: no sockets, no printing, only bytes in and values out."""
