void ek_dummy(void) {}
