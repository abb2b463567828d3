// The one translation unit that compiles Boost.JSON (header-only in Debian's packaging).
#include <boost/json/src.hpp>
