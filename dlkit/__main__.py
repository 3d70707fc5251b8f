from dlkit.cli import main

main()
