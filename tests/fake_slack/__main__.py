"""`python -m tests.fake_slack` still works: it runs `python -m bot.demo.standin`."""

from bot.demo.standin.__main__ import main

if __name__ == "__main__":
    main()
