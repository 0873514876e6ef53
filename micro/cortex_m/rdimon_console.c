/* stdio on the semihosting console for images that use printf (the C tests of
 * micro/tests): newlib's librdimon implements the system calls with
 * semihosting once its handles are opened, which its own start-up code would
 * do; startup.c runs this constructor instead. */
extern void initialise_monitor_handles(void);

__attribute__((constructor)) static void open_semihosting_console(void) {
  initialise_monitor_handles();
}
