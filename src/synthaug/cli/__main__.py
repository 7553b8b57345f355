from synthaug.cli.main import main

main()
