# `make install` (doc/install.md): the daemon and znstgt-ctl, their manual
# pages, the systemd unit and an example configuration. PREFIX places the
# programs, manuals and unit; DESTDIR stages everything below a directory
# (packaging, tests/install-test.sh). The configuration goes to
# $(SYSCONFDIR)/znstgt and is never overwritten: a second install keeps the
# operator's files.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install

.PHONY: install uninstall

install: $(B)/znstgt $(B)/znstgt-ctl
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/znstgt/conf.d
	$(INSTALL) -m 755 $(B)/znstgt $(B)/znstgt-ctl $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 644 doc/man/znstgt.8 doc/man/znstgt-ctl.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 doc/man/znstgt.ini.5 $(DESTDIR)$(MANDIR)/man5/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		conf/install/znstgt.service.in > $(DESTDIR)$(UNITDIR)/znstgt.service
	chmod 644 $(DESTDIR)$(UNITDIR)/znstgt.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/znstgt/znstgt.ini ] || \
		$(INSTALL) -m 644 conf/install/znstgt.ini $(DESTDIR)$(SYSCONFDIR)/znstgt/znstgt.ini
	[ -e $(DESTDIR)$(SYSCONFDIR)/znstgt/conf.d/zoned.ini ] || \
		$(INSTALL) -m 644 conf/zoned.ini $(DESTDIR)$(SYSCONFDIR)/znstgt/conf.d/zoned.ini

# Everything but the configuration (and the data in /var/lib/znstgt).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/znstgt $(DESTDIR)$(SBINDIR)/znstgt-ctl \
		$(DESTDIR)$(MANDIR)/man8/znstgt.8 $(DESTDIR)$(MANDIR)/man8/znstgt-ctl.8 \
		$(DESTDIR)$(MANDIR)/man5/znstgt.ini.5 $(DESTDIR)$(UNITDIR)/znstgt.service
