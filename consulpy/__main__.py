from consulpy.cli.main import main

raise SystemExit(main())
