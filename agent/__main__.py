from agent.cli import end_process, main

try:
    main()
except SystemExit as done:
    end_process(done.code)
