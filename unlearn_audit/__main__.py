from unlearn_audit.cli import main

main()
