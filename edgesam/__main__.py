from edgesam.cli.main import main

main()
